package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// --hosts narrows every host command to the stage's hosts whose address
// matches a pattern: a deploy to one host leaves the others untouched, and
// exec, logs and doctor only talk to the selected hosts.
func TestHostsFilter(t *testing.T) {
	t.Parallel() // its own isolated hosts
	env := harness.New(t)
	hosts := env.StartIsolatedHosts(t, 11, 12, 13)
	a := newApp(t, env, "pick", "/var/deploy", hosts, "", "")
	one, two, three := hosts[0], hosts[1], hosts[2]
	port := func(h *harness.SSHD) string { return h.Addr[strings.LastIndexByte(h.Addr, ':'):] }

	// A glob on the address: only host two is deployed.
	out := a.mustShipit("deploy", "-s", "production", "--hosts", "*"+port(two))
	mustContain(t, "deploy --hosts", out, two.Addr+" | ✓ [12/12] deploy:cleanup")
	if strings.Contains(out, one.Addr+" |") || strings.Contains(out, three.Addr+" |") {
		t.Fatalf("deploy --hosts touched other hosts:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(two.DeployRoot, "pick", "shipit.lock")); err != nil {
		t.Fatalf("selected host not deployed: %v", err)
	}
	for _, h := range []*harness.SSHD{one, three} {
		if _, err := os.Stat(filepath.Join(h.DeployRoot, "pick")); err == nil {
			t.Fatalf("host %s was not selected but has the app", h.Addr)
		}
		if ids := strings.Fields(env.Docker(t, h, "ps", "-aq", "--filter", "label=shipit.app=pick")); len(ids) != 0 {
			t.Fatalf("host %s was not selected but runs containers %v", h.Addr, ids)
		}
	}

	// exec: two patterns, comma-separated.
	out = a.mustShipit("exec", "-s", "production", "--hosts", one.Addr+",*"+port(three), "--", "echo hi")
	mustContain(t, "exec --hosts", out, one.Addr+": exit 0", three.Addr+": exit 0")
	if strings.Contains(out, two.Addr) {
		t.Fatalf("exec --hosts ran on an unselected host:\n%s", out)
	}

	// logs and doctor on the deployed host only.
	out = a.mustShipit("logs", "-s", "production", "--hosts", two.Addr, "--tail", "5")
	if strings.Contains(out, one.Addr) || strings.Contains(out, three.Addr) {
		t.Fatalf("logs --hosts read other hosts:\n%s", out)
	}
	out, _ = a.shipit("doctor", "-s", "production", "--hosts", two.Addr)
	mustContain(t, "doctor --hosts", out, two.Addr+"\n", "✓ current release", "on 1 of 1 host(s)")
	if strings.Contains(out, one.Addr) || strings.Contains(out, three.Addr) {
		t.Fatalf("doctor --hosts checked other hosts:\n%s", out)
	}

	// A pattern that matches nothing is refused before connecting, naming the hosts.
	out, code := a.shipit("deploy", "-s", "production", "--hosts", "10.9.9.*")
	if code == 0 {
		t.Fatal("deploy with a pattern matching no host exited 0")
	}
	mustContain(t, "no match", out, "--hosts 10.9.9.* matches no host of stage production", one.Addr)
}
