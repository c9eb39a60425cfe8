package e2e

// Zero-downtime deploys through a real Traefik (issue 7): an isolated host
// set up with `shipit setup` and the real Traefik image
// (harness.TraefikImage), the graceful app (on SIGTERM it stops accepting
// at once and finishes in-flight requests), and harness.Load sending
// requests through Traefik on new connections plus a 2-second request
// every second. Across a deploy, a failed deploy, a second deploy, a
// rollback and a deploy that changes the domain, no request may fail and
// every slow request must complete.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// zdIsolatedHost is the isolated host number this test holds (a
// machine-wide resource; see harness.StartIsolatedHost).
const zdIsolatedHost = 20

// zdToml is the routed app's shipit.toml with a 30 s health timeout (the
// failed deploy fails sooner); extra adds lines to [deploy.health_check].
func zdToml(name, addr, domain, extra string) string {
	return routedToml(name, addr, domain, "timeout = \"30s\"\n"+extra)
}

type zdRun struct {
	*routedApp
	t *testing.T
}

// newZD sets up an isolated host with the real Traefik and deploys the
// graceful app, version 1.
func newZD(t *testing.T) *zdRun {
	env := harness.New(t)
	r := newRoutedApp(t, env, zdIsolatedHost, "zd", func(addr, domain string) string { return zdToml("zd", addr, domain, "") }, nil)
	return &zdRun{routedApp: r, t: t}
}

// answersNow checks that right after a command returned, 20 requests in a
// row are answered by version v.
func (z *zdRun) answersNow(domain, v string) {
	z.t.Helper()
	for i := 0; i < 20; i++ {
		code, body := harness.HTTPGet(z.url, domain)
		if code != 200 || strings.TrimSpace(body) != "version "+v {
			z.t.Fatalf("request %d after the command returned: %d %q, want version %s", i+1, code, strings.TrimSpace(body), v)
		}
	}
}

func zdCheck(t *testing.T, what string, rep harness.LoadReport) {
	t.Helper()
	t.Logf("%s: %v", what, rep)
	if rep.Failed != 0 || rep.SlowCompleted != rep.SlowStarted {
		t.Errorf("%s: not zero-downtime: %d of %d requests failed %v; %d of %d slow requests completed",
			what, rep.Failed, rep.Sent, rep.ByKind, rep.SlowCompleted, rep.SlowStarted)
	}
}

func TestZeroDowntimeThroughTraefik(t *testing.T) {
	t.Parallel() // its own isolated hosts
	z := newZD(t)
	load := harness.StartLoad(t, harness.LoadOpts{URL: z.url, Host: z.domain})
	time.Sleep(2 * time.Second)
	phase := func(name string, fn func()) {
		start := time.Now()
		fn()
		time.Sleep(500 * time.Millisecond)
		rep := load.Snapshot()
		w := harness.NewLoadReport(start, time.Now(), rep)
		zdCheck(t, name, w)
		if w.Sent < 300 {
			t.Errorf("%s: only %d requests during the phase, want at least 300", name, w.Sent)
		}
	}

	phase("deploy of version 2", func() {
		z.commit(map[string]string{"version.txt": "2\n"})
		z.mustShipit("deploy", "-s", "production")
		z.answersNow(z.domain, "2")
	})
	phase("failed deploy of version 3", func() {
		z.commit(map[string]string{"version.txt": "3\n", "shipit.toml": zdToml("zd", z.host.Addr, z.domain, "cmd = \"exit 1\"\n")})
		out, code := z.shipit("deploy", "-s", "production")
		if code == 0 {
			t.Fatal("a deploy whose health check always fails succeeded")
		}
		mustContain(t, "failed deploy", out, "did not become healthy")
		z.answersNow(z.domain, "2")
	})
	phase("deploy of version 4", func() {
		z.commit(map[string]string{"version.txt": "4\n", "shipit.toml": zdToml("zd", z.host.Addr, z.domain, "")})
		z.mustShipit("deploy", "-s", "production")
		z.answersNow(z.domain, "4")
	})
	phase("rollback to version 2", func() {
		z.mustShipit("rollback", "-s", "production")
		z.answersNow(z.domain, "2")
	})
	whole := load.Stop()
	zdCheck(t, "whole run", whole)

	// A deploy that changes the domain: while the old release serves, the
	// old domain keeps answering (no router disabled for being defined two
	// ways); once the new release is routed, the new domain answers.
	newDomain := "zd2.example.com"
	routed := filepath.Join(z.host.DeployRoot, "zd", ".test-routed")
	stopping := filepath.Join(z.host.DeployRoot, "zd", ".test-stopping")
	z.commit(map[string]string{"version.txt": "5\n", "shipit.toml": zdToml("zd", z.host.Addr, newDomain, ""),
		"shipit.lua": `after("deploy:health", function(h) h:run("touch /var/deploy/zd/.test-routed") end)
before("deploy:stop_previous", function(h) h:run("touch /var/deploy/zd/.test-stopping") end)
`})
	oldLoad := harness.StartLoad(t, harness.LoadOpts{URL: z.url, Host: z.domain})
	cmd := z.shipitCmd("deploy", "-s", "production")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, routed, 2*time.Minute)
	newLoad := harness.StartLoad(t, harness.LoadOpts{URL: z.url, Host: newDomain})
	waitFile(t, stopping, time.Minute)
	stopAt := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("domain-changing deploy failed: %v\n%s", err, out.String())
	}
	z.answersNow(newDomain, "5")
	oldRep, newRep := oldLoad.Stop(), newLoad.Stop()
	zdCheck(t, "old domain until the old release is drained", harness.NewLoadReport(start, stopAt, oldLoad.Snapshot()))
	zdCheck(t, "new domain from the moment the new release is routed", newRep)
	t.Logf("old domain over the whole domain-changing deploy (404 after the old release left is expected): %v", oldRep)
}

func waitFile(t *testing.T, p string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s", p, within)
}
