package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// Bad input gets file:line:col and a hint, before any host is contacted.
func TestBadConfigAndScriptErrors(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	a := &app{t: t, env: env, dir: t.TempDir(), home: t.TempDir()}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := "[app]\nname = \"x\"\n\n[stages.production]\nhosts = [{ address = \"127.0.0.1:1\" }]\n"
	cases := []struct {
		toml, lua string
		wants     []string
	}{
		{toml: "[app]\nname = \"x\"\nbranchh = \"main\"\n", wants: []string{"shipit.toml:3:1", "branchh", "shipit: hint:", "branch"}},
		{toml: "[app]\nname = \"x\"\n[deploy]\nkeep_releases = \"five\"\n", wants: []string{"shipit.toml:4:", "keep_releases"}},
		{toml: "[app\nname = 1\n", wants: []string{"shipit.toml:1:"}},
		{toml: good, lua: "before(\"deploy:start\", function(h)\n  h:run(\"true\")\nend)\nlocal x = nope\n", wants: []string{"shipit.lua:4:", "undefined global 'nope'"}},
		{toml: good, lua: "task(\"x\", function(h)\n  if then\nend)\n", wants: []string{"shipit.lua:2:", "syntax error"}},
		{toml: good, lua: "after(\"deploy:simlink\", function(h) end)\n", wants: []string{"shipit.lua:1:", `did you mean "deploy:symlink"`}},
	}
	for _, c := range cases {
		write("shipit.toml", c.toml)
		os.Remove(filepath.Join(a.dir, "shipit.lua"))
		if c.lua != "" {
			write("shipit.lua", c.lua)
		}
		out, code := a.shipit("deploy", "-s", "production")
		if code == 0 {
			t.Fatalf("exit 0 for bad input:\n%s\n%s", c.toml, c.lua)
		}
		mustContain(t, "error output", out, append(c.wants, "shipit: error:")...)
	}
	write("shipit.toml", good)
	os.Remove(filepath.Join(a.dir, "shipit.lua"))
	out, code := a.shipit("deploy", "-s", "staging")
	if code == 0 {
		t.Fatal("unknown stage accepted")
	}
	mustContain(t, "unknown stage", out, "staging", "production")
}

// Messages of issue 20 that need a host: no embedded recipe's file:line in
// user-facing errors, a summary that says what runs after a rollback, an
// empty `logs` that says so, "1 container", and a task that does not
// exist refused before any host is contacted.
func TestMessagesOnAHost(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	a := newApp(t, env, "msgs", t.TempDir(), []*harness.SSHD{host}, "", "")
	a.commit(map[string]string{"docker-compose.yml": "services:\n  web:\n    build: .\n    init: true\n"})
	cleanupApp(t, env, host, "msgs")
	noRecipe := func(what, out string) {
		t.Helper()
		if strings.Contains(out, "recipes/") {
			t.Fatalf("%s cites an embedded recipe:\n%s", what, out)
		}
	}

	// Before the first deploy: an unknown task is refused locally (the
	// host's sshd sees no connection: nothing was written there).
	out, code := a.shipit("run", "-s", "production", "deploi")
	if code != 1 {
		t.Fatalf("run deploi exited %d", code)
	}
	mustContain(t, "run deploi", out, `shipit: error: no task named "deploi" (did you mean "deploy"?)`, "shipit: hint: `shipit tasks` lists every task")
	if strings.Contains(out, "connect") || strings.Contains(out, "FAILED") || strings.Contains(out, host.Addr) {
		t.Fatalf("run of an unknown task contacted the host:\n%s", out)
	}

	a.mustShipit("deploy", "-s", "production")
	first := strings.TrimSpace(env.HostRun(t, host, "readlink "+a.dirDeployTo(t)+"/msgs/current"))
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	a.mustShipit("deploy", "-s", "production")

	out, _ = a.shipit("doctor", "-s", "production")
	mustContain(t, "doctor", out, "healthy (1 container)")

	out, code = a.shipit("logs", "-s", "production", "nosuch")
	if code != 1 {
		t.Fatalf("logs nosuch exited %d", code)
	}
	// Found in the compose file, before any host is contacted.
	mustContain(t, "logs nosuch", out, `shipit: error: no service "nosuch" in docker-compose.yml (services: web)`)
	noRecipe("logs nosuch", out)

	out = a.mustShipit("logs", "-s", "production", "web", "-n", "0")
	mustContain(t, "empty logs", out, host.Addr+" | no log lines from web in release ", "(--tail 0)")

	out, code = a.shipit("app", "exec", "-s", "production", "--", "sh", "-c", "exit 3")
	if code != 1 {
		t.Fatalf("app exec exit 3: shipit exited %d", code)
	}
	mustContain(t, "app exec exit 3", out, "step app:exec failed: command exited with code 3")
	noRecipe("app exec exit 3", out)

	out, code = a.shipit("rollback", "-s", "production", "--release", "20000101-000000")
	if code != 1 {
		t.Fatalf("rollback to an unknown release exited %d", code)
	}
	mustContain(t, "rollback --release unknown", out, "release 20000101-000000 is not on this host (see `shipit releases`)")
	noRecipe("rollback --release unknown", out)

	out = a.mustShipit("rollback", "-s", "production")
	mustContain(t, "rollback summary", out, "  ok  release "+filepath.Base(first), "  runs "+filepath.Base(first))
}
