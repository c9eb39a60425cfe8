package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/shipit-dev/shipit/builtins/http"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
	"github.com/shipit-dev/shipit/internal/webhook"
	"github.com/shipit-dev/shipit/runtime"
)

type recorder struct {
	mu     sync.Mutex
	events []runtime.Event
}

func (r *recorder) Emit(e runtime.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		b.WriteString(e.Text + "\n")
	}
	return b.String()
}

type hit struct {
	Path, Body, ContentType, Auth string
}

// hookServer records what it receives: /json answers JSON, /fail 500 with
// a body, /hang waits for the client to go away; the rest 204.
func hookServer(t *testing.T) (*httptest.Server, func() []hit) {
	var mu sync.Mutex
	var hits []hit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{r.URL.Path, string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization")})
		mu.Unlock()
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok": true, "id": 42, "echo": `+string(b)+`}`)
		case "/fail":
			w.WriteHeader(500)
			io.WriteString(w, "database on fire\nstack trace...")
		case "/hang":
			<-r.Context().Done()
		default:
			w.WriteHeader(204)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hit {
		mu.Lock()
		defer mu.Unlock()
		return append([]hit(nil), hits...)
	}
}

func newState(t *testing.T, src string, secrets map[string]string, params ...string) (*runtime.State, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := &config.Config{App: config.App{Name: "demo"}, Stages: map[string]*config.Stage{"prod": {Hosts: []config.Host{{Address: "h1"}}}}}
	env := &runtime.Env{Config: cfg, Stage: "prod", ProjectDir: ".", Sink: rec, Secrets: secrets, Verbose: true}
	if len(secrets) > 0 { // as the CLI does once a stage's secrets are decrypted
		env.Redact = func(s string) string {
			for _, v := range secrets {
				s = strings.ReplaceAll(s, v, "***")
			}
			return s
		}
	}
	dir := t.TempDir()
	host := &runtime.Host{Conn: &localconn.Conn{HostName: "10.0.0.7", Dir: dir}, Name: "10.0.0.7", Stage: "prod", App: "demo", AppPath: dir, Release: "r1", Primary: true}
	if len(params) == 2 {
		host.Params = map[string]string{params[0]: params[1]}
	}
	c, err := runtime.Compile(runtime.Script{Name: "shipit.lua", Source: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewState(env, host, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, rec
}

func TestPostJSONFromAHook(t *testing.T) {
	srv, hits := hookServer(t)
	s, rec := newState(t, `
local http = require("shipit.http")
task("notify", function(h)
  local res = http.post(params.url .. "/json", { text = "deployed " .. h.release, hosts = { h.host }, n = 3 },
                        { json = true, headers = { Authorization = "secret:TOKEN" }, timeout = "5s" })
  assert(res.status == 200, "status " .. res.status)
  assert(res.json.ok == true and res.json.id == 42, "decoded json")
  assert(res.json.echo.text == "deployed r1", "echo")
  assert(res.headers["content-type"] == "application/json", "headers")
  local plain = http.get(params.url .. "/plain", { timeout = 2 })
  assert(plain.status == 204 and plain.body == "" and plain.json == nil, "plain")
  local raw = http.post(params.url .. "/raw", "a=1&b=2", { headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
  assert(raw.status == 204)
end)
`, map[string]string{"TOKEN": "Bearer t0ps3cret"}, "url", srv.URL)
	if _, err := s.RunTask(context.Background(), "notify"); err != nil {
		t.Fatal(err)
	}
	got := hits()
	if len(got) != 3 {
		t.Fatalf("hits %+v", got)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(got[0].Body), &body); err != nil {
		t.Fatalf("body %q: %v", got[0].Body, err)
	}
	if body["text"] != "deployed r1" || got[0].ContentType != "application/json" || got[0].Auth != "Bearer t0ps3cret" {
		t.Fatalf("first hit %+v", got[0])
	}
	if got[2].Body != "a=1&b=2" || got[2].ContentType != "application/x-www-form-urlencoded" {
		t.Fatalf("raw hit %+v", got[2])
	}
	if out := rec.text(); !strings.Contains(out, "http POST "+srv.URL+"/json") || strings.Contains(out, "t0ps3cret") {
		t.Fatalf("events:\n%s", out)
	}
}

func TestFailureRaisesWithHostURLAndStatus(t *testing.T) {
	srv, _ := hookServer(t)
	s, _ := newState(t, `
local http = require("shipit.http")
task("notify", function(h) http.post("secret:HOOK", { text = "body-never-shown" }, { json = true }) end)
`, map[string]string{"HOOK": srv.URL + "/fail"})
	_, err := s.RunTask(context.Background(), "notify")
	var se *webhook.StatusError
	if !errors.As(err, &se) || se.Status != 500 || se.Host != "10.0.0.7" {
		t.Fatalf("want a StatusError of host 10.0.0.7, got %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "host 10.0.0.7: http POST secret:HOOK: status 500 Internal Server Error: database on fire") ||
		strings.Contains(msg, "stack trace") || strings.Contains(msg, "body-never-shown") || strings.Contains(msg, srv.URL) {
		t.Fatalf("message: %s", msg)
	}
	if !strings.Contains(hint.Of(err), "try again later") {
		t.Fatalf("hint: %q", hint.Of(err))
	}

	s2, rec := newState(t, `
local http = require("shipit.http")
task("caught", function(h)
  local ok, err = pcall(http.get, "secret:HOOK")
  assert(not ok)
  log.warn("notification failed: %s", err)
end)
`, map[string]string{"HOOK": srv.URL + "/fail"})
	if _, err := s2.RunTask(context.Background(), "caught"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.text(), "notification failed: shipit.lua:4: host 10.0.0.7: http GET secret:HOOK: status 500") {
		t.Fatalf("pcall'd error:\n%s", rec.text())
	}
}

func TestBadArguments(t *testing.T) {
	for src, want := range map[string]string{
		`http.get("http://127.0.0.1:1/", { jsn = true })`:               `unknown option "jsn"`,
		`http.post("http://127.0.0.1:1/", { a = 1 })`:                   "a table body is sent as JSON: pass opts {json = true}",
		`http.post("http://127.0.0.1:1/", true)`:                        "expected a string or a table",
		`http.get("http://127.0.0.1:1/", { timeout = "soon" })`:         `option "timeout"`,
		`http.get("hooks.example.com/x")`:                               "not an http(s) URL",
		`http.get("secret:NOPE")`:                                       "stage prod has no secret NOPE",
		`http.get("http://127.0.0.1:1/", { headers = { X = "a\nb" } })`: "has a line break",
	} {
		s, _ := newState(t, "local http = require(\"shipit.http\")\ntask(\"t\", function(h) "+src+" end)\n", nil)
		_, err := s.RunTask(context.Background(), "t")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

// Ctrl-C (the host's context) aborts a request at once.
func TestCancelAbortsTheRequest(t *testing.T) {
	srv, _ := hookServer(t)
	s, _ := newState(t, `
local http = require("shipit.http")
task("t", function(h) http.get("secret:HANG", { timeout = 60 }) end)
`, map[string]string{"HANG": srv.URL + "/hang"})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.RunTask(ctx, "t")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancel: %v after %s", err, time.Since(start))
	}
}

// Outside a host (a script's top level), the module works without one.
func TestWithoutAHost(t *testing.T) {
	srv, hits := hookServer(t)
	cfg := &config.Config{App: config.App{Name: "demo"}, Stages: map[string]*config.Stage{"prod": {Hosts: []config.Host{{Address: "h1"}}}}}
	src := `local http = require("shipit.http")
local ok, err = pcall(http.get, "` + srv.URL + `/fail")
assert(not ok and tostring(err):find("http GET ` + srv.URL + `/fail: status 500", 1, true), tostring(err))
assert(http.get("` + srv.URL + `/x").status == 204)
`
	c, err := runtime.Compile(runtime.Script{Name: "shipit.lua", Source: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewState(&runtime.Env{Config: cfg, Stage: "prod", Sink: runtime.Discard}, nil, c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(hits()) != 2 {
		t.Fatalf("hits: %+v", hits())
	}
}

// A secret value that found its way into a body (an error text, a
// command's output) is sent as ***.
func TestSecretValuesAreRedactedFromBodies(t *testing.T) {
	srv, hits := hookServer(t)
	s, _ := newState(t, `
local http = require("shipit.http")
task("t", function(h)
  http.post(params.url .. "/json", { error = "auth failed for pw=hunter22", list = { "hunter22" } }, { json = true })
  http.post(params.url .. "/raw", "text hunter22 end")
end)
`, map[string]string{"DB_PASSWORD": "hunter22"}, "url", srv.URL)
	if _, err := s.RunTask(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	got := hits()
	if len(got) != 2 || got[0].Body != `{"error":"auth failed for pw=***","list":["***"]}` || got[1].Body != "text *** end" {
		t.Fatalf("bodies: %+v", got)
	}
}
