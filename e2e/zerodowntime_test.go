package e2e

// Zero-downtime deploys through a real Traefik (issue 7).
//
// TestZeroDowntimeDeploy is the acceptance test of draining: an isolated
// host set up with `shipit setup` and the real Traefik image
// (harness.TraefikImage), the graceful app (harness.GracefulAppFiles)
// deployed, then deployed twice more while harness.Load sends requests
// through Traefik on new connections, plus a 2-second request every second.
// It asserts that no request failed and that every slow request completed.
//
// It is OFF unless SHIPIT_ZD_BASELINE=1: today's deploy stops the previous
// release while Traefik still routes to it, and the test fails (measured
// on the traefik branch: see traefik-facts.md in the notes). Turn it on
// (drop the switch) once deploy:stop_previous drains the old release.
//
//	SHIPIT_ZD_BASELINE=1 go test ./e2e -run TestZeroDowntimeDeploy -v -count=1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

const zdBaselineEnv = "SHIPIT_ZD_BASELINE"

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

[deploy.health_check]
port = %d
path = "/health"
interval = "500ms"
%s
[stages.production]
user = "root"
hosts = [{ address = %q }]

[stages.production.traefik]
domain = %q
tls = false
image = %q
`, name, harness.GracefulAppPort, healthExtra, addr, domain, harness.TraefikImage)
}

// zdDrainLua drains the previous release from shipit.lua, with today's
// binary: wait for Traefik to route the new release (its provider applies
// changes at most every 2s), make the old web container's health check
// fail (marker file), wait until Traefik has dropped it, then let
// deploy:stop_previous stop it. The waits are fixed sleeps: Traefik's API
// is not enabled by shipit setup.
const zdDrainLua = `
before("deploy:stop_previous", function(h)
  if h.previous_release == "" then return end
  local ids = h:run({"docker", "ps", "-q",
    "--filter", "label=com.docker.compose.project=" .. h.app .. "-" .. h.previous_release,
    "--filter", "label=com.docker.compose.service=web"})
  h:run("sleep 2.5")
  for id in ids:gmatch("%S+") do
    h:run({"docker", "exec", id, "touch", "/tmp/shipit-drain"})
  end
  -- 2 failed probes at 500ms, then Traefik's reaction (< 2s throttle)
  h:run("sleep 3")
end)
`

// zdDeploys sets up an isolated host with the real Traefik, deploys the
// graceful app (files on top of harness.GracefulAppFiles), then deploys
// versions 2 and 3 under load; it returns the load report and logs it by
// phase.
func zdDeploys(t *testing.T, healthExtra string, files map[string]string) harness.LoadReport {
	env := harness.New(t)
	host := env.StartIsolatedHost(t, zdIsolatedHost)
	env.AllowContainerTraffic(t, host)
	env.LoadImage(t, host, harness.TraefikImage)

	const name, domain = "zd", "zd.example.com"
	a := &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home"), name: name}
	if err := os.MkdirAll(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	all := harness.GracefulAppFiles(t, "1")
	for k, v := range files {
		all[k] = v
	}
	all["shipit.toml"] = zdToml(name, host.Addr, domain, healthExtra)
	harness.GitRepo(t, a.dir, all)

	httpPort, httpsPort := harness.FreePort(t), harness.FreePort(t)
	a.env2 = []string{fmt.Sprintf("SHIPIT_TRAEFIK_PORTS=%d:%d", httpPort, httpsPort)}
	mustContain(t, "setup", a.mustShipit("setup", "-s", "production"), "started container traefik ("+harness.TraefikImage+")")
	url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	a.mustShipit("deploy", "-s", "production")
	took := harness.WaitAnswer(t, url, domain, "version 1", 60*time.Second)
	t.Logf("release 1 routed by Traefik %v after the deploy returned", took.Round(time.Millisecond))

	load := harness.StartLoad(t, harness.LoadOpts{URL: url, Host: domain})
	time.Sleep(3 * time.Second)
	type span struct {
		version    string
		start, end time.Time
	}
	var deploys []span
	for _, v := range []string{"2", "3"} {
		a.commit(map[string]string{"version.txt": v + "\n"})
		start := time.Now()
		a.mustShipit("deploy", "-s", "production")
		end := time.Now()
		harness.WaitAnswer(t, url, domain, "version "+v, 30*time.Second)
		deploys = append(deploys, span{v, start, end})
		time.Sleep(3 * time.Second)
	}
	rep := load.Stop()

	var b strings.Builder
	fmt.Fprintf(&b, "whole run: %v\n", rep)
	fmt.Fprintf(&b, "before the first redeploy: %v\n", rep.Window(rep.From, deploys[0].start))
	for _, d := range deploys {
		fmt.Fprintf(&b, "deploy of version %s (%v): %v\n", d.version, d.end.Sub(d.start).Round(time.Millisecond),
			rep.Window(d.start, d.end.Add(2*time.Second)))
	}
	t.Log(b.String())
	out := env.Docker(t, host, "ps", "--filter", "label=shipit.app="+name, "--format", "{{.Names}} {{.Status}}")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 1 {
		t.Errorf("%d containers of the app run after the deploys, want 1:\n%s", n, out)
	}
	return rep
}

func zdCheck(t *testing.T, rep harness.LoadReport) {
	t.Helper()
	if rep.Failed != 0 || rep.SlowCompleted != rep.SlowStarted {
		t.Errorf("not zero-downtime: %d of %d requests failed %v; %d of %d slow requests completed",
			rep.Failed, rep.Sent, rep.ByKind, rep.SlowCompleted, rep.SlowStarted)
	}
	if rep.Versions["3"] == 0 {
		t.Errorf("no answer from version 3: %v", rep.Versions)
	}
}

// TestZeroDowntimeDeploy: the product path, today's recipe (see the top of
// this file). Fails today.
func TestZeroDowntimeDeploy(t *testing.T) {
	if os.Getenv(zdBaselineEnv) != "1" {
		t.Logf("off: %s=1 runs it; it fails until deploys drain the previous release (see the comment at the top of e2e/zerodowntime_test.go)", zdBaselineEnv)
		return
	}
	zdCheck(t, zdDeploys(t, "retries = 20\n", nil))
}

// TestZeroDowntimeDeployLuaDrain: the same deploys with the drain done in
// shipit.lua (zdDrainLua) and a health check that fails on the marker
// (retries 2 so that it turns unhealthy within a second). It shows what
// the marker approach gives with today's binary; it is behind the same
// switch because it relies on fixed sleeps.
func TestZeroDowntimeDeployLuaDrain(t *testing.T) {
	if os.Getenv(zdBaselineEnv) != "1" {
		t.Logf("off: %s=1 runs it (see the comment at the top of e2e/zerodowntime_test.go)", zdBaselineEnv)
		return
	}
	hc := fmt.Sprintf("retries = 2\ncmd = \"[ ! -e /tmp/shipit-drain ] && wget -q -O /dev/null http://127.0.0.1:%d/health\"\n", harness.GracefulAppPort)
	zdCheck(t, zdDeploys(t, hc, map[string]string{"shipit.lua": zdDrainLua}))
}
