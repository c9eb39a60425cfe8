package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// notifyLua posts a JSON notification from shipit.lua: after a deploy from
// the primary host (URL from a secret), and on failure (URL from the
// environment, with a bearer token from a secret). SHIPIT_E2E_FAIL makes
// deploy:start fail.
const notifyLua = `
local http = require("shipit.http")

after("deploy:cleanup", function(h)
  if not h.primary then return end
  local res = http.post("secret:HOOK_URL", {
    event = "deploy", status = "ok", app = h.app, stage = h.stage, host = h.host,
    release = h.release, previous_release = h.previous_release, git_sha = h.state.git_sha,
  }, { json = true, timeout = "5s" })
  log.info("notified: %s %s", res.status, res.json.received)
end)

before("deploy:start", function(h)
  if os.getenv("SHIPIT_E2E_FAIL") then fail("boom: injected failure") end
end)

on_failure("deploy", function(h, err)
  local ok, e = pcall(http.post, os.getenv("HOOK_FAIL_URL"), {
    event = "deploy", status = "failed", host = h.host, release = h.release, error = err:match("^[^\n]*"),
  }, { json = true, headers = { Authorization = "secret:HOOK_AUTH" } })
  if not ok then log.warn("notification not sent: %s", e) end
end)
`

type notification struct {
	Path, Auth, ContentType string
	Body                    map[string]any
}

// A notification posted by a shipit.lua hook during a real deploy reaches a
// local HTTP server (the request goes from shipit, not from the host); on a
// failed deploy the on_failure hook posts the error. The webhook URL, a
// secret, never shows in the output.
func TestNotificationFromDeployHooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []notification
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := notification{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(b, &n.Body); err != nil {
			t.Errorf("notification body %q: %v", b, err)
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"received": true}`)
	}))
	defer srv.Close()
	notifications := func() []notification {
		mu.Lock()
		defer mu.Unlock()
		return append([]notification(nil), got...)
	}

	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := filepath.Join(env.Dir, "deploy")
	a := newApp(t, env, "notif", deployTo, []*harness.SSHD{host}, "", "")
	cleanupApp(t, env, host, "notif")

	// The stage's secrets: the webhook URL (its path is the credential) and
	// a token for the failure hook's Authorization header.
	keyFile := filepath.Join(env.Dir, "age.key")
	if out, err := exec.Command("age-keygen", "-o", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	key, _ := os.ReadFile(keyFile)
	recipient := ""
	for _, l := range strings.Split(string(key), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			recipient = r
		}
	}
	hookToken := "T0KENxq7w3"
	a.env2 = []string{"SHIPIT_AGE_KEY=" + string(key), "HOOK_FAIL_URL=" + srv.URL + "/failed"}
	toml, _ := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	a.commit(map[string]string{"shipit.lua": notifyLua, "shipit.toml": string(toml) + "\n[secrets]\nrecipients = [\"" + recipient + "\"]\n"})
	a.mustShipit("secrets", "set", "-s", "production", "HOOK_URL="+srv.URL+"/services/"+hookToken, "HOOK_AUTH=Bearer s3cr3t-auth")

	out := a.mustShipit("-v", "deploy", "-s", "production")
	mustContain(t, "deploy", out, "http POST secret:HOOK_URL", "notified: 200 true")
	if strings.Contains(out, hookToken) || strings.Contains(out, "s3cr3t-auth") {
		t.Fatalf("a secret shows in the output:\n%s", out)
	}
	lock, _ := readLock(t, filepath.Join(deployTo, "notif"))
	sha := strings.TrimSpace(runGit(t, a.dir, "rev-parse", "HEAD"))
	ns := notifications()
	if len(ns) != 1 {
		t.Fatalf("want 1 notification, got %+v", ns)
	}
	n := ns[0]
	if n.Path != "/services/"+hookToken || n.ContentType != "application/json" || n.Auth != "" {
		t.Fatalf("notification request: %+v", n)
	}
	want := map[string]any{"event": "deploy", "status": "ok", "app": "notif", "stage": "production", "host": host.Addr,
		"release": lock.CurrentRelease, "git_sha": sha}
	for k, v := range want {
		if n.Body[k] != v {
			t.Errorf("notification %s = %v, want %v (body %v)", k, n.Body[k], v, n.Body)
		}
	}
	if _, ok := n.Body["previous_release"]; !ok {
		t.Errorf("previous_release missing (first deploy: \"\"): %v", n.Body)
	}

	// A failed deploy: the on_failure hook posts the error's first line.
	waitNextSecond(lock.CurrentRelease)
	a.env2 = append(a.env2, "SHIPIT_E2E_FAIL=1")
	out, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatalf("the injected failure did not fail the deploy:\n%s", out)
	}
	ns = notifications()
	if len(ns) != 2 {
		t.Fatalf("want a failure notification, got %+v", ns)
	}
	n = ns[1]
	if n.Path != "/failed" || n.Auth != "Bearer s3cr3t-auth" || n.Body["status"] != "failed" || n.Body["host"] != host.Addr ||
		!strings.Contains(n.Body["error"].(string), "boom: injected failure") || strings.Contains(n.Body["error"].(string), "\n") {
		t.Fatalf("failure notification: %+v", n)
	}
	if strings.Contains(out, "s3cr3t-auth") || strings.Contains(out, hookToken) {
		t.Fatalf("a secret shows in the output:\n%s", out)
	}
}
