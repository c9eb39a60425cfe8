package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// A deploy whose domain no Traefik on the host can route fails before it
// switches (the previous release keeps serving, current and shipit.lock
// unchanged) and says what to do; --allow-unrouted switches with a warning.
func TestDeployWithoutTraefikFailsBeforeSwitching(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	// An isolated host: its own engine, on which no Traefik runs.
	host := env.StartIsolatedHost(t, 15)
	a := newApp(t, env, "unrouted", "/var/deploy", []*harness.SSHD{host}, "", "")
	a.mustShipit("deploy", "-s", "production") // allow_unrouted = true in newApp's shipit.toml
	state := func() string {
		return env.HostRun(t, host, "readlink /var/deploy/unrouted/current; cat /var/deploy/unrouted/shipit.lock; "+
			"docker ps --filter label=shipit.app=unrouted --format '{{.Label \"shipit.release\"}}'")
	}
	before := state()

	b, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	toml := string(b)
	strict := strings.Replace(toml, "allow_unrouted = true\n", "", 1)
	if strict == toml {
		t.Fatal("newApp's shipit.toml has no allow_unrouted line to remove")
	}
	// --plan is the recipe's deploy:plan task: a shipit.lua hook adds its
	// own line to it.
	hook := `after("deploy:plan", function(h) require("shipit.report").warn("migrations", "2 pending") end)` + "\n"
	a.commit(map[string]string{"shipit.toml": strict, "www/index.html": "version 2\n", "shipit.lua": hook})
	plan := a.mustShipit("deploy", "-s", "production", "--plan")
	mustContain(t, "deploy --plan", plan, "routing     no traefik container: the deploy FAILS before switching (nothing routes demo.example.com)",
		"  migrations  2 pending")
	out, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatalf("deploy to a host without Traefik succeeded:\n%s", out)
	}
	mustContain(t, "deploy output", out,
		`no "traefik" container runs on the host: nothing routes demo.example.com to release unrouted-`,
		"run `shipit setup -s STAGE` to start Traefik", "--allow-unrouted", "the previous release keeps serving")
	if after := state(); after != before {
		t.Fatalf("the failed deploy changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	out = a.mustShipit("deploy", "-s", "production", "--allow-unrouted")
	mustContain(t, "deploy output", out, `WARNING: no running "traefik" container on host `+host.Addr, "allowed by --allow-unrouted")
	if after := state(); after == before {
		t.Fatalf("the deploy with --allow-unrouted did not switch:\n%s", after)
	}
}
