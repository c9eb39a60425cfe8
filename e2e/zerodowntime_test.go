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
	"fmt"
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

func zdToml(name, addr, domain, healthExtra string) string {
	return fmt.Sprintf(`[app]
name = %q
branch = "main"

[deploy]
deploy_to = "/var/deploy"
keep_releases = 3
stop_timeout = "10s"

[deploy.health_check]
port = %d
path = "/health"
interval = "500ms"
retries = 20
timeout = "30s"
unhealthy_after = 2
%s
[stages.production]
user = "root"
hosts = [{ address = %q }]

[stages.production.traefik]
domain = %q
image = %q
`, name, harness.GracefulAppPort, healthExtra, addr, domain, harness.TraefikImage)
}

type zdRun struct {
	t      *testing.T
	env    *harness.Env
	a      *app
	host   *harness.SSHD
	url    string
	domain string
}

// newZD sets up an isolated host with the real Traefik and deploys the
// graceful app, version 1.
func newZD(t *testing.T) *zdRun {
	env := harness.New(t)
	host := env.StartIsolatedHost(t, zdIsolatedHost)
	env.AllowContainerTraffic(t, host)
	env.LoadImage(t, host, harness.TraefikImage)
	const name = "zd"
	z := &zdRun{t: t, env: env, host: host, domain: "zd.example.com"}
	z.a = &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home"), name: name}
	if err := os.MkdirAll(z.a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := harness.GracefulAppFiles(t, "1")
	files["shipit.toml"] = zdToml(name, host.Addr, z.domain, "")
	harness.GitRepo(t, z.a.dir, files)
	httpPort, httpsPort := harness.FreePort(t), harness.FreePort(t)
	z.a.env2 = []string{fmt.Sprintf("SHIPIT_TRAEFIK_PORTS=%d:%d", httpPort, httpsPort)}
	mustContain(t, "setup", z.a.mustShipit("setup", "-s", "production"), "started container traefik ("+harness.TraefikImage+")")
	z.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	z.a.mustShipit("deploy", "-s", "production")
	harness.WaitAnswer(t, z.url, z.domain, "version 1", 60*time.Second)
	return z
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

func (z *zdRun) commit(files map[string]string) { z.a.commit(files) }

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
		z.a.mustShipit("deploy", "-s", "production")
		z.answersNow(z.domain, "2")
	})
	phase("failed deploy of version 3", func() {
		z.commit(map[string]string{"version.txt": "3\n", "shipit.toml": zdToml("zd", z.host.Addr, z.domain, "cmd = \"exit 1\"\n")})
		out, code := z.a.shipit("deploy", "-s", "production")
		if code == 0 {
			t.Fatal("a deploy whose health check always fails succeeded")
		}
		mustContain(t, "failed deploy", out, "did not become healthy")
		z.answersNow(z.domain, "2")
	})
	phase("deploy of version 4", func() {
		z.commit(map[string]string{"version.txt": "4\n", "shipit.toml": zdToml("zd", z.host.Addr, z.domain, "")})
		z.a.mustShipit("deploy", "-s", "production")
		z.answersNow(z.domain, "4")
	})
	phase("rollback to version 2", func() {
		z.a.mustShipit("rollback", "-s", "production")
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
	cmd := z.a.shipitCmd("deploy", "-s", "production")
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
