package e2e

// Deploys that check themselves (issue 18): after the switch, shipit reads
// the real Traefik's metrics for [deploy.verify] window and rolls the new
// release back when a gate fails. One isolated host, the graceful app,
// requests through Traefik all along (harness.Load). A bad release (30% of
// / answer 500) and a slow one (p95 far above the previous release's) go
// back; a good one and the slow one without a latency gate stay; too little
// traffic warns (fails when required); a Traefik without metrics says it
// cannot measure. The host ends consistent (DESIGN.md §7) after each.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

func TestVerifyAfterTheSwitch(t *testing.T) {
	t.Parallel() // its own isolated host
	env := harness.New(t)
	const name = "vfy"
	toml := func(addr, domain, verify string) string {
		return routedToml(name, addr, domain, "") + "\n[deploy.verify]\nwindow = \"10s\"\ninterval = \"2s\"\nmin_requests = 30\n" + verify
	}
	r := newRoutedApp(t, env, 21, name, func(addr, domain string) string { return toml(addr, domain, "") }, nil)
	f := &faultApp{routedApp: r, appPath: "/var/deploy/" + name, root: filepath.Join(r.host.DeployRoot, name), version: 1}
	z := &zdRun{routedApp: r, t: t}
	compose := func(envs string) string {
		return "services:\n  web:\n    build: .\n    environment:\n" + envs
	}
	deploy := func(version, verify, envs string, args ...string) (string, int) {
		t.Helper()
		r.commit(map[string]string{"version.txt": version + "\n", "shipit.toml": toml(r.host.Addr, r.domain, verify),
			"docker-compose.yml": compose(envs)})
		out, code := r.shipit(append([]string{"deploy", "-s", "production"}, args...)...)
		if why := f.consistent(); why != "" {
			t.Fatalf("after the deploy of version %s: %s\n%s", version, why, out)
		}
		return out, code
	}
	load := harness.StartLoad(t, harness.LoadOpts{URL: r.url, Host: r.domain})
	defer load.Stop()
	time.Sleep(3 * time.Second)

	// A good release passes and stays.
	out, code := deploy("2", "", "      OK: \"1\"\n")
	if code != 0 {
		t.Fatalf("good release: exit %d\n%s", code, out)
	}
	mustContain(t, "good release", out, "verify "+r.host.Addr+": watching vfy-production for 10s", "5xx 0.0%", "passed:")
	z.answersNow(r.domain, "2")

	// 30% of / answer 500: rolled back within the window, exit non-zero.
	start := time.Now()
	out, code = deploy("3", "", "      FAIL_PERCENT: \"30\"\n")
	if code == 0 {
		t.Fatalf("bad release: exit 0\n%s", out)
	}
	mustContain(t, "bad release", out, "verify failed", "% > 1.0% over", "rolled back to")
	t.Logf("bad release rolled back, command took %s", time.Since(start).Round(100*time.Millisecond))
	z.answersNow(r.domain, "2")
	audit := r.mustShipit("audit", "-s", "production")
	mustContain(t, "audit", audit, "rolled back: verify: 5xx", "verify passed:")

	// 5x slower at p95: rolled back with the latency gate, kept without.
	out, code = deploy("4", "max_p95_ratio = 2.0\n", "      DELAY_MS: \"60\"\n")
	if code == 0 {
		t.Fatalf("slow release with a latency gate: exit 0\n%s", out)
	}
	mustContain(t, "slow release", out, "verify failed", "p95 ", "the previous release's", "rolled back to")
	z.answersNow(r.domain, "2")
	out, code = deploy("5", "", "      DELAY_MS: \"60\"\n")
	if code != 0 {
		t.Fatalf("slow release without a latency gate: exit %d\n%s", code, out)
	}
	mustContain(t, "slow release kept", out, "passed:")
	z.answersNow(r.domain, "5")

	// Too little traffic: a warning by default, a rollback when required.
	load.Stop()
	out, code = deploy("6", "", "      OK: \"1\"\n")
	if code != 0 {
		t.Fatalf("low traffic: exit %d\n%s", code, out)
	}
	mustContain(t, "low traffic", out, "warning: not enough traffic")
	out, code = deploy("7", "require_traffic = true\n", "      OK: \"1\"\n")
	if code == 0 {
		t.Fatalf("low traffic, required: exit 0\n%s", out)
	}
	mustContain(t, "low traffic, required", out, "not enough traffic", "rolled back to")

	// A Traefik without metrics (recreated by hand without the flags):
	// verify says it cannot measure and skips; with require_metrics it fails.
	recreateTraefikWithoutMetrics(t, env, r.host)
	harness.WaitAnswer(t, r.url, r.domain, "version 6", 60*time.Second)
	out, code = deploy("8", "", "      OK: \"1\"\n")
	if code != 0 {
		t.Fatalf("no metrics: exit %d\n%s", code, out)
	}
	mustContain(t, "no metrics", out, "cannot measure", "Traefik serves no metrics")
	out, code = deploy("9", "require_metrics = true\n", "      OK: \"1\"\n")
	if code == 0 {
		t.Fatalf("no metrics, required: exit 0\n%s", out)
	}
	mustContain(t, "no metrics, required", out, "cannot measure", "require_metrics = true", "rolled back to")
}

// recreateTraefikWithoutMetrics replaces the host's traefik container by
// one with the same image, ports, binds and network but no --metrics flag.
func recreateTraefikWithoutMetrics(t *testing.T, env *harness.Env, host *harness.SSHD) {
	t.Helper()
	var cs []struct {
		Args       []string
		Config     struct{ Image string }
		HostConfig struct {
			Binds        []string
			PortBindings map[string][]struct{ HostIP, HostPort string }
		}
	}
	if err := json.Unmarshal([]byte(env.Docker(t, host, "inspect", "traefik")), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("inspect traefik: %v", err)
	}
	c := cs[0]
	run := []string{"run", "-d", "--name", "traefik", "--network", "traefik", "--restart", "unless-stopped"}
	for port, bs := range c.HostConfig.PortBindings {
		for _, b := range bs {
			run = append(run, "-p", fmt.Sprintf("%s:%s:%s", b.HostIP, b.HostPort, strings.TrimSuffix(port, "/tcp")))
		}
	}
	for _, b := range c.HostConfig.Binds {
		run = append(run, "-v", b)
	}
	run = append(run, c.Config.Image)
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "--metrics") {
			run = append(run, a)
		}
	}
	env.Docker(t, host, "rm", "-f", "traefik")
	env.Docker(t, host, run...)
}

// A canary decides by itself: `--canary 1 --canary-wait 20s` with a bad
// release on 3 isolated hosts, each with its own Traefik under load. The
// canary's numbers over the wait fail the gate (and are worse than the
// other hosts'): it goes back, and the other two were never touched.
func TestVerifyCanaryGoesBackAlone(t *testing.T) {
	t.Parallel() // its own isolated hosts
	env := harness.New(t)
	const name = "vfc"
	hosts := env.StartIsolatedHosts(t, 6, 7, 8)
	var hostLines strings.Builder
	for _, h := range hosts {
		env.AllowContainerTraffic(t, h)
		env.LoadImage(t, h, harness.TraefikImage)
		fmt.Fprintf(&hostLines, "  { address = %q },\n", h.Addr)
	}
	a := &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home-"+name), name: name}
	if err := os.MkdirAll(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	domain := name + ".example.com"
	files := harness.GracefulAppFiles(t, "1")
	files["shipit.toml"] = fmt.Sprintf(`[app]
name = %q

[deploy]
stop_timeout = "10s"

[deploy.health_check]
port = %d
interval = "500ms"
retries = 20
unhealthy_after = 2

[deploy.verify]
interval = "2s"
min_requests = 30

[stages.production]
user = "root"
hosts = [
%s]

[stages.production.traefik]
domain = %q
image = %q
`, name, harness.GracefulAppPort, hostLines.String(), domain, harness.TraefikImage)
	harness.GitRepo(t, a.dir, files)
	// One Traefik per host, each on its own ports (the isolated hosts share
	// this machine's network namespace).
	var urls []string
	for _, h := range hosts {
		httpPort, httpsPort := harness.FreePort(t), harness.FreePort(t)
		a.env2 = []string{fmt.Sprintf("SHIPIT_TRAEFIK_PORTS=%d:%d", httpPort, httpsPort)}
		a.mustShipit("setup", "-s", "production", "--hosts", h.Addr)
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", httpPort))
	}
	a.env2 = nil
	a.mustShipit("deploy", "-s", "production")
	var loads []*harness.Load
	for _, u := range urls {
		harness.WaitAnswer(t, u, domain, "version 1", 60*time.Second)
		loads = append(loads, harness.StartLoad(t, harness.LoadOpts{URL: u, Host: domain, Clients: 2}))
	}
	defer func() {
		for _, l := range loads {
			l.Stop()
		}
	}()
	before := map[string][]string{}
	for _, h := range hosts {
		before[h.Addr] = releasesOn(t, filepath.Join(h.DeployRoot, name))
	}
	time.Sleep(3 * time.Second)
	a.commit(map[string]string{"version.txt": "2\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      FAIL_PERCENT: \"30\"\n"})
	out, code := a.shipit("deploy", "-s", "production", "--canary", "1", "--canary-wait", "20s")
	if code == 0 {
		t.Fatalf("a bad canary rolled out:\n%s", out)
	}
	mustContain(t, "canary", out, "verify "+hosts[0].Addr+": watching vfc-production for 20s",
		"verify failed ("+hosts[0].Addr+": 5xx", "rolled back to")
	harness.WaitAnswer(t, urls[0], domain, "version 1", 10*time.Second)
	for i, h := range hosts[1:] {
		if got := releasesOn(t, filepath.Join(h.DeployRoot, name)); strings.Join(got, ",") != strings.Join(before[h.Addr], ",") {
			t.Errorf("host %d was touched: releases %v, were %v", i+2, got, before[h.Addr])
		}
		harness.WaitAnswer(t, urls[i+1], domain, "version 1", 10*time.Second)
	}
}
