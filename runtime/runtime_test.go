package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
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

func (r *recorder) texts(kind runtime.EventKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.Text)
		}
	}
	return out
}

func compile(t *testing.T, name, src string) *runtime.Compiled {
	t.Helper()
	c, err := runtime.Compile(runtime.Script{Name: name, Source: []byte(src)})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return c
}

func newEnv(rec *recorder) *runtime.Env {
	cfg := &config.Config{App: config.App{Name: "demo", Branch: "main"}, Deploy: config.Deploy{KeepReleases: 5, WebService: "web"},
		Stages: map[string]*config.Stage{"prod": {Hosts: []config.Host{{Address: "h1"}}}}}
	return &runtime.Env{Config: cfg, Stage: "prod", ProjectDir: ".", Sink: rec}
}

func newHost(t *testing.T) *runtime.Host {
	dir := t.TempDir()
	return &runtime.Host{Conn: &localconn.Conn{HostName: "h1", Dir: dir}, Name: "h1", Stage: "prod", App: "demo", AppPath: dir, Release: "20250101-000000"}
}

const recipe = `
task("a", function(h) print("a") end)
task("b", function(h) print("b") end)
task("pipe", {"a", "b"})
on_failure(function(h, err) print("recipe-failure: " .. err) end)
`

func TestHooksOrderAndReplacedStepKeepsHooks(t *testing.T) {
	rec := &recorder{}
	user := `
before("a", function(h) print("before-a") end)
after("b", function(h) print("after-b " .. h.release) end)
task("b", function(h) print("b-replaced") end)
`
	s, err := runtime.NewState(newEnv(rec), newHost(t), compile(t, "recipe.lua", recipe), compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	timings, err := s.RunTask(context.Background(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.texts(runtime.Info), ",")
	if got != "before-a,a,b-replaced,after-b 20250101-000000" {
		t.Fatalf("run order = %s", got)
	}
	if len(timings) != 2 || timings[1].Name != "b" {
		t.Fatalf("timings = %+v", timings)
	}
	if s.Plan.Tasks["b"].Replaced != "recipe.lua:3" {
		t.Fatalf("Replaced = %q", s.Plan.Tasks["b"].Replaced)
	}
}

func TestFailureRunsOnFailureHooksAndReportsStep(t *testing.T) {
	rec := &recorder{}
	user := `
task("b", function(h) h:run("echo boom >&2; exit 3") end)
on_failure(function(h, err) print("user-failure") end)
`
	s, err := runtime.NewState(newEnv(rec), newHost(t), compile(t, "recipe.lua", recipe), compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.RunTask(context.Background(), "pipe")
	var se *runtime.StepError
	if !errors.As(err, &se) || se.Step != "b" || se.Host != "h1" {
		t.Fatalf("want StepError on step b, got %v", err)
	}
	var re *remote.CommandError
	if !errors.As(err, &re) || re.Code != 3 || !strings.Contains(re.Stderr, "boom") {
		t.Fatalf("want RemoteError code 3 with stderr, got %#v", re)
	}
	if !strings.Contains(err.Error(), "shipit.lua:2") {
		t.Fatalf("error does not name the Lua line: %v", err)
	}
	infos := rec.texts(runtime.Info)
	if len(infos) < 3 || !strings.HasPrefix(infos[1], "recipe-failure: ") || infos[2] != "user-failure" {
		t.Fatalf("on_failure hooks: %q", infos)
	}
}

func TestScriptErrorsHavePositions(t *testing.T) {
	cases := []struct{ src, want string }{
		{"local x = 1\nlocal = 2", "shipit.lua:2:7: syntax error"},
		{"\n\nprint(undefined_thing)", "shipit.lua:3: undefined global 'undefined_thing'"},
		{"before(\"pipee\", function() end)", `shipit.lua:1: before("pipee"): no step or task has that name (did you mean "pipe"?)`},
		{"local x = config.app.nmae", `config has no key "nmae"`},
		{"config.app.name = 'x'", "config is read-only"},
		{"os.exit(1)", "attempt to call a non-function object"},
	}
	for _, c := range cases {
		_, err := func() (*runtime.State, error) {
			sc, err := runtime.Compile(runtime.Script{Name: "shipit.lua", Source: []byte(c.src)})
			if err != nil {
				return nil, err
			}
			return runtime.NewState(newEnv(&recorder{}), nil, compile(t, "recipe.lua", recipe), sc)
		}()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want it to contain %q", c.src, err, c.want)
		}
	}
}

func TestRunQuotesWordLists(t *testing.T) {
	rec := &recorder{}
	h := newHost(t)
	user := `task("q", function(h) h:run({"touch", "$(echo pwned)", "a b"}) end)`
	dir := h.Conn.(*localconn.Conn).Dir // NewState wraps the connection (its guard)
	s, err := runtime.NewState(newEnv(rec), h, compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RunTask(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"$(echo pwned)", "a b"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("file %q not created literally: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("command substitution was executed")
	}
}

func TestRunOptionsAndHostFields(t *testing.T) {
	rec := &recorder{}
	user := `task("t", function(h)
  local r = h:run("exit 4", {check = false})
  assert(r.code == 4, "code")
  assert(h:run("cat", {stdin = "in"}) == "in")
  h:put(h.app_path .. "/f", "data", "0600")
  assert(h:exists(h.app_path .. "/f"))
  assert(h:read(h.app_path .. "/f") == "data")
  assert(h.release_path == h.app_path .. "/releases/" .. h.release)
  h.vars.x = 1
  local ok, err = pcall(function() return h.nope end)
  assert(not ok and err:find("no field"), "strict host fields")
  ok, err = pcall(function() h:run("true", {chek = false}) end)
  assert(not ok and err:find("unknown option"), "strict options")
end)`
	h := newHost(t)
	s, err := runtime.NewState(newEnv(rec), h, compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RunTask(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(h.AppPath, "f"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("put mode: %v %v", fi, err)
	}
}

func TestCancelledContextStopsAndRunsFailureHooks(t *testing.T) {
	rec := &recorder{}
	user := `task("slow", function(h) h:run("sleep 30") end)
on_failure(function(h, err) h:run("touch cleaned") end)`
	h := newHost(t)
	s, err := runtime.NewState(newEnv(rec), h, compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if _, err := s.RunTask(ctx, "slow"); err == nil {
		t.Fatal("want an error")
	}
	if _, err := os.Stat(filepath.Join(h.AppPath, "cleaned")); err != nil {
		t.Fatal("on_failure did not run on a fresh context after cancel")
	}
}

// fail() in an embedded recipe is a message for the user, without the
// recipe's file:line; in the user's scripts it keeps its position, and a
// recipe's own bug (a Lua runtime error) keeps it too.
func TestFailPositionOnlyForUserScripts(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"recipes/ops.lua", `task("t", function(h) fail("no service \"x\"") end)`, `no service "x"`},
		{"shipit.lua", `task("t", function(h) fail("no service \"x\"") end)`, `shipit.lua:1: no service "x"`},
		{"recipes/ops.lua", "task(\"t\", function(h)\n local x = nil\n return x.y end)", `recipes/ops.lua:3: `},
	}
	for _, c := range cases {
		s, err := runtime.NewState(newEnv(&recorder{}), newHost(t), compile(t, c.name, c.src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.RunTask(context.Background(), "t")
		s.Close()
		var se *runtime.StepError
		if !errors.As(err, &se) {
			t.Fatalf("%s: want a StepError, got %v", c.name, err)
		}
		if got := se.Err.Error(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: error %q, want it to start with %q", c.name, got, c.want)
		}
	}
}
