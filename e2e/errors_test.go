package e2e

import (
	"os"
	"path/filepath"
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
