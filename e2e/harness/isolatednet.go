package harness

import (
	"fmt"
	"testing"
)

// AllowContainerTraffic lets the containers of isolated host s talk to each
// other (e.g. Traefik to an app container on the traefik network).
//
// Isolated engines run with --iptables=false, but the default engine sets
// the FORWARD policy to DROP and loads br_netfilter
// (net.bridge.bridge-nf-call-iptables=1), so frames bridged between two
// containers of an isolated engine go through the FORWARD chain and are
// dropped: connections between its containers hang. This inserts
// `FORWARD -s POOL -d POOL -j ACCEPT` for the engine's address pool
// 10.(224+n).0.0/16 and deletes it in t.Cleanup. Traffic from the host
// (a published port's docker-proxy) to a container is not forwarded and
// needs nothing.
func (e *Env) AllowContainerTraffic(t testing.TB, s *SSHD) {
	t.Helper()
	if s == nil || s.engine == nil {
		t.Fatal("harness: AllowContainerTraffic needs an isolated host (StartIsolatedHost)")
	}
	pool := fmt.Sprintf("10.%d.0.0/16", 224+s.engine.n)
	rule := []string{"FORWARD", "-s", pool, "-d", pool, "-m", "comment", "--comment", "shipit-e2e-" + s.engine.bridge, "-j", "ACCEPT"}
	if _, err := run("", nil, nil, "iptables", append([]string{"-C"}, rule...)...); err == nil {
		return // left by a killed run, or added before
	}
	runCmd(t, "", nil, "iptables", append([]string{"-I", rule[0], "1"}, rule[1:]...)...)
	t.Cleanup(func() {
		if _, err := run("", nil, nil, "iptables", append([]string{"-D"}, rule...)...); err != nil {
			t.Logf("harness: removing the FORWARD rule for %s: %v", pool, err)
		}
	})
}
