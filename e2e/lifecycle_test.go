package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// hooksLua exercises the public Lua API inside a real deploy.
const hooksLua = `
-- Record, at the moment the previous release is about to stop, whether the
-- new web container is healthy and the old one still runs.
local function web(h, rel)
  return (h:run({"docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" .. h.app .. "-" .. rel,
                 "--filter", "label=com.docker.compose.service=web"}):gsub("%s+$", ""))
end
before("deploy:stop_previous", function(h)
  local new = h:run({"docker", "inspect", "-f", "{{.State.Health.Status}}", web(h, h.release)}):gsub("%s+$", "")
  local old = "none"
  if h.previous_release ~= "" and web(h, h.previous_release) ~= "" then old = "running" end
  h:put(h.app_path .. "/order-" .. h.release, new .. " " .. old .. "\n")
end)
after("deploy:symlink", function(h) print("switched to " .. h.release) end)

-- A replaced step keeps the hooks attached to its name, and sets what the
-- deploy contract asks of it.
before("deploy:env", function(h) h.vars.env_hook = true end)
task("deploy:env", function(h)
  h:put(h.shared_path .. "/.env", "GREETING=hello from shipit.lua\n", "0600")
  h:run({"ln", "-sfn", "../../shared/.env", h.release_path .. "/.env"})
  h.state.secrets_hash = ""
end)
after("deploy:env", function(h)
  assert(h.vars.env_hook, "before hook did not run")
  print("env hooks ran")
end)

task("backup", function(h)
  print("backup of " .. h.app .. " at " .. h.release)
  h:put(h.app_path .. "/backup-marker", h.release)
end)
`

type lockFile struct {
	CurrentRelease  string `json:"current_release"`
	PreviousRelease string `json:"previous_release"`
	GitSHA          string `json:"git_sha"`
	SecretsHash     string `json:"secrets_hash"`
	DeployedAt      string `json:"deployed_at"`
}

func readLock(t testing.TB, appPath string) (lockFile, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(appPath, "shipit.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var l lockFile
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("shipit.lock is not JSON: %v\n%s", err, b)
	}
	return l, b
}

func releasesOn(t *testing.T, appPath string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(appPath, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// webContainers lists the web containers (any state) of a release on the
// default engine.
func webContainers(t testing.TB, env *harness.Env, s *harness.SSHD, app, release string) []string {
	t.Helper()
	out := env.Docker(t, s, "ps", "-aq", "--filter", "label=com.docker.compose.project="+app+"-"+release,
		"--filter", "label=com.docker.compose.service=web")
	return strings.Fields(out)
}

func health(t *testing.T, env *harness.Env, s *harness.SSHD, id string) string {
	return strings.TrimSpace(env.Docker(t, s, "inspect", "-f", "{{.State.Health.Status}}", id))
}

func serve(t *testing.T, env *harness.Env, s *harness.SSHD, id string) string {
	return strings.TrimSpace(env.Docker(t, s, "exec", id, "wget", "-qO-", "http://localhost:8080/"))
}

// newLocalApp is app name deploying under a temp dir (deployTo) to a
// loopback sshd on this machine's Docker engine; its containers, networks
// and images go with the test.
func newLocalApp(t *testing.T, name string) (*harness.Env, *harness.SSHD, *app, string) {
	t.Helper()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	a := newApp(t, env, name, deployTo, []*harness.SSHD{host}, "", "")
	cleanupApp(t, env, host, name)
	return env, host, a, deployTo
}

func cleanupApp(t *testing.T, env *harness.Env, s *harness.SSHD, app string) {
	t.Cleanup(func() {
		ids := strings.Fields(env.Docker(t, s, "ps", "-aq", "--filter", "label=shipit.app="+app))
		if len(ids) > 0 {
			env.Docker(t, s, append([]string{"rm", "-f"}, ids...)...)
		}
		// Each release's compose network takes an address pool; the shared
		// engine runs out of pools if tests leave them behind.
		var nets []string
		for _, n := range strings.Fields(env.Docker(t, s, "network", "ls", "--format", "{{.Name}}", "--filter", "name="+app+"-")) {
			if strings.HasPrefix(n, app+"-") {
				nets = append(nets, n)
			}
		}
		if len(nets) > 0 {
			env.Docker(t, s, append([]string{"network", "rm"}, nets...)...)
		}
		// Images built on the host are <app>-<release>-<service> (compose v1: _<service>).
		var imgs []string
		for _, ref := range strings.Fields(env.Docker(t, s, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+app+"-*")) {
			if releaseImageRe.MatchString(strings.TrimPrefix(ref, app+"-")) {
				imgs = append(imgs, ref)
			}
		}
		if len(imgs) > 0 {
			env.Docker(t, s, append([]string{"image", "rm", "-f"}, imgs...)...)
		}
	})
}

var releaseRe = regexp.MustCompile(`^\d{8}-\d{6}$`)

// releaseImageRe is what follows "<app>-" in an image built on a host.
var releaseImageRe = regexp.MustCompile(`^\d{8}-\d{6}[-_][^:]+:`)

func TestDeployLifecycle(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := filepath.Join(env.Dir, "deploy root $(x)") // a path that needs quoting
	a := newApp(t, env, "life", deployTo, []*harness.SSHD{host}, "", "")
	a.commit(map[string]string{"shipit.lua": hooksLua})
	cleanupApp(t, env, host, "life")
	appPath := filepath.Join(deployTo, "life")

	// tasks shows hooks in run order and the replaced step.
	out := a.mustShipit("tasks")
	mustContain(t, "shipit tasks", out, "deploy:release", "deploy:cleanup", "before  shipit.lua:", "[replaced at shipit.lua:", "backup")

	// 1. First deploy.
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "deploy output", out, "[12/12] deploy:cleanup", "switched to", "env hooks ran")
	rels := releasesOn(t, appPath)
	if len(rels) != 1 || !releaseRe.MatchString(rels[0]) {
		t.Fatalf("releases after first deploy: %v", rels)
	}
	r1 := rels[0]
	if link, err := os.Readlink(filepath.Join(appPath, "current")); err != nil || link != "releases/"+r1 {
		t.Fatalf("current -> %q (%v), want releases/%s", link, err, r1)
	}
	if fi, err := os.Stat(filepath.Join(appPath, "repo", "HEAD")); err != nil || fi.IsDir() {
		t.Fatalf("bare repo missing: %v", err)
	}
	lock, _ := readLock(t, appPath)
	sha := strings.TrimSpace(runGit(t, a.dir, "rev-parse", "HEAD"))
	if lock.CurrentRelease != r1 || lock.PreviousRelease != "" || lock.GitSHA != sha {
		t.Fatalf("lock after first deploy: %+v (want current %s, sha %s)", lock, r1, sha)
	}
	if _, err := time.Parse(time.RFC3339, lock.DeployedAt); err != nil {
		t.Fatalf("deployed_at %q: %v", lock.DeployedAt, err)
	}
	ov, err := os.ReadFile(filepath.Join(appPath, "releases", r1, "docker-compose.override.yml"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "override", string(ov), "Host(`demo.example.com`)", "certresolver", "loadbalancer.server.port", "8080", "/run/shipit/probe", "http://127.0.0.1:8080/health", "traefik")
	w1 := webContainers(t, env, host, "life", r1)
	if len(w1) != 1 || health(t, env, host, w1[0]) != "healthy" {
		t.Fatalf("web of %s: %v", r1, w1)
	}
	if got := env.Docker(t, host, "exec", w1[0], "sh", "-c", "echo $GREETING"); strings.TrimSpace(got) != "hello from shipit.lua" {
		t.Fatalf("container env GREETING = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(appPath, "shared", ".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("shared/.env: %v %v", fi, err)
	}

	// 2. Second deploy: the previous release stops only after the new one is healthy.
	waitNextSecond(r1)
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	a.mustShipit("deploy", "-s", "production")
	lock, _ = readLock(t, appPath)
	r2 := lock.CurrentRelease
	if r2 == r1 || lock.PreviousRelease != r1 {
		t.Fatalf("lock after second deploy: %+v", lock)
	}
	order, err := os.ReadFile(filepath.Join(appPath, "order-"+r2))
	if err != nil || strings.TrimSpace(string(order)) != "healthy running" {
		t.Fatalf("at stop_previous: %q (%v), want new healthy and old running", order, err)
	}
	if ids := webContainers(t, env, host, "life", r1); len(ids) != 0 {
		t.Fatalf("previous release still has containers: %v", ids)
	}
	w2 := webContainers(t, env, host, "life", r2)
	if len(w2) != 1 || serve(t, env, host, w2[0]) != "version 2" {
		t.Fatalf("release %s does not serve version 2", r2)
	}

	// 3. A deploy whose health check fails leaves everything as it was.
	_, lockBefore := readLock(t, appPath)
	linkBefore, _ := os.Readlink(filepath.Join(appPath, "current"))
	a.commit(map[string]string{
		"Dockerfile": "FROM " + harness.BaseImage + "\nCOPY www /www\nCMD [\"sh\", \"-c\", \"echo booting-v3; rm /www/health; exec httpd -f -p 8080 -h /www\"]\n",
	})
	out, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatal("deploy with a failing health check exited 0")
	}
	mustContain(t, "failed deploy output", out, "deploy:health", "unhealthy", "booting-v3", "last health-check results",
		"GET http://127.0.0.1:8080/health: 404", "shipit: hint:")
	_, lockAfter := readLock(t, appPath)
	linkAfter, _ := os.Readlink(filepath.Join(appPath, "current"))
	if string(lockAfter) != string(lockBefore) || linkAfter != linkBefore {
		t.Fatalf("failed deploy changed state:\nlock %s -> %s\ncurrent %s -> %s", lockBefore, lockAfter, linkBefore, linkAfter)
	}
	if rels := releasesOn(t, appPath); len(rels) != 2 {
		t.Fatalf("failed release left behind: %v", rels)
	}
	if ids := strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=shipit.app=life")); len(ids) != 2 {
		t.Fatalf("want only the 2 containers of %s, got %v", r2, ids)
	}
	if serve(t, env, host, w2[0]) != "version 2" || health(t, env, host, w2[0]) != "healthy" {
		t.Fatal("old release stopped serving during the failed deploy")
	}

	// 4. Rollback to the previous release.
	a.commit(map[string]string{"Dockerfile": appFiles("")["Dockerfile"]})
	a.mustShipit("rollback", "-s", "production")
	lock, _ = readLock(t, appPath)
	if lock.CurrentRelease != r1 || lock.PreviousRelease != r2 || lock.GitSHA != sha {
		t.Fatalf("lock after rollback: %+v", lock)
	}
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link != "releases/"+r1 {
		t.Fatalf("current after rollback -> %s", link)
	}
	w1 = webContainers(t, env, host, "life", r1)
	if len(w1) != 1 || serve(t, env, host, w1[0]) != "version 1" {
		t.Fatal("rolled-back release does not serve version 1")
	}
	if ids := webContainers(t, env, host, "life", r2); len(ids) != 0 {
		t.Fatalf("rolled-away release still runs: %v", ids)
	}
	out = a.mustShipit("releases", "-s", "production")
	mustContain(t, "releases", out, "* "+r1, "< "+r2)

	// 5. keep_releases = 2 never removes the current release or the rollback target.
	waitNextSecond(r2)
	a.mustShipit("deploy", "-s", "production")
	lock, _ = readLock(t, appPath)
	r4 := lock.CurrentRelease
	if rels := releasesOn(t, appPath); len(rels) != 3 {
		t.Fatalf("after deploy 4 (previous %s protected): %v", r1, rels)
	}
	waitNextSecond(r4)
	a.mustShipit("deploy", "-s", "production")
	lock, _ = readLock(t, appPath)
	if rels := releasesOn(t, appPath); strings.Join(rels, ",") != r4+","+lock.CurrentRelease {
		t.Fatalf("after deploy 5 want [%s %s], got %v", r4, lock.CurrentRelease, rels)
	}

	// 6. A custom task and an ad-hoc command on every host.
	out = a.mustShipit("run", "backup", "-s", "production")
	mustContain(t, "run backup", out, "backup of life at "+lock.CurrentRelease)
	out = a.mustShipit("exec", "-s", "production", "--", "uname -s")
	mustContain(t, "exec", out, "Linux", host.Addr+": exit 0")
	out, code = a.shipit("exec", "-s", "production", "--", "echo to-stderr >&2; exit 3")
	if code == 0 {
		t.Fatal("exec of a failing command exited 0")
	}
	mustContain(t, "failing exec", out, "to-stderr", "exit 3")
}

func waitNextSecond(release string) {
	for time.Now().UTC().Format("20060102-150405") <= release {
		time.Sleep(100 * time.Millisecond)
	}
}

func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}
