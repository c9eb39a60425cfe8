package e2e

// Every image deploys (issue 16): the graceful app FROM scratch (no shell,
// no curl, no wget) and in an image with a shell but neither curl nor wget,
// through the real Traefik under load: deploy, a deploy whose health check
// never passes (undone), a deploy with health_check.cmd (exec form for
// scratch, shell form for the shell image), and a rollback. No request may
// fail, every slow request completes, and the host ends consistent
// (DESIGN.md §7). The health check is shipit's probe, mounted from the host.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

func TestEveryImageDeploysThroughTraefik(t *testing.T) {
	t.Parallel() // its own isolated hosts
	for _, tc := range []struct {
		kind harness.ImageKind
		host int
		cmd  string // the [deploy.health_check] cmd of the third deploy
	}{
		{harness.Scratch, 14, `cmd = ["/gracefulapp", "-probe", "http://127.0.0.1:8080/health"]`},
		{harness.ShellNoCurl, 15, `cmd = "test -s /version && exec /gracefulapp -probe http://127.0.0.1:8080/health"`},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			everyImage(t, tc.kind, tc.host, tc.cmd)
		})
	}
}

func everyImage(t *testing.T, kind harness.ImageKind, n int, cmd string) {
	env := harness.New(t)
	name := "ei" + strings.ReplaceAll(string(kind), "-", "")
	toml := func(addr, domain, extra string) string {
		return routedToml(name, addr, domain, "timeout = \"30s\"\n"+extra)
	}
	r := newRoutedAppOf(t, env, n, name, kind, func(addr, domain string) string { return toml(addr, domain, "") }, nil)
	f := &faultApp{routedApp: r, appPath: "/var/deploy/" + name, root: filepath.Join(r.host.DeployRoot, name), version: 1}
	z := &zdRun{routedApp: r, t: t}
	if why := f.consistent(); why != "" {
		t.Fatalf("after the first deploy: %s", why)
	}
	// The image really lacks what the old health check needed.
	web := strings.TrimSpace(env.Docker(t, r.host, "ps", "-q", "--filter", "label=shipit.app="+name, "--filter", "label=com.docker.compose.service=web"))
	check := exec.Command("docker", "exec", web, "/bin/sh", "-c", "command -v curl || command -v wget")
	check.Env = append(os.Environ(), "DOCKER_HOST="+r.host.DockerHost)
	if out, err := check.CombinedOutput(); err == nil {
		t.Fatalf("the %s image has curl or wget: %s", kind, out)
	}
	load := harness.StartLoad(t, harness.LoadOpts{URL: r.url, Host: r.domain})
	time.Sleep(time.Second)
	phase := func(what string, fn func()) {
		t.Helper()
		start := time.Now()
		fn()
		time.Sleep(500 * time.Millisecond)
		zdCheck(t, string(kind)+": "+what, harness.NewLoadReport(start, time.Now(), load.Snapshot()))
		if why := f.consistent(); why != "" {
			t.Fatalf("%s: after %s: %s", kind, what, why)
		}
	}
	phase("deploy of version 2", func() {
		r.commit(map[string]string{"version.txt": "2\n"})
		r.mustShipit("deploy", "-s", "production")
		z.answersNow(r.domain, "2")
	})
	phase("failed deploy of version 3 (health never passes)", func() {
		r.commit(map[string]string{"version.txt": "3\n",
			"shipit.toml": strings.Replace(toml(r.host.Addr, r.domain, ""), `path = "/health"`, `path = "/nope"`, 1)})
		out, code := r.shipit("deploy", "-s", "production")
		if code == 0 {
			t.Fatalf("a deploy whose health check never passes succeeded:\n%s", out)
		}
		// The URL probed, its last status, and the container's own logs.
		mustContain(t, "failed deploy", out, "did not become healthy", "health check: GET http://127.0.0.1:8080/nope",
			"GET http://127.0.0.1:8080/nope: 404 Not Found", "gracefulapp version 3 listening on :8080", "shipit: hint:")
		z.answersNow(r.domain, "2")
	})
	phase("deploy of version 4 with health_check.cmd", func() {
		r.commit(map[string]string{"version.txt": "4\n", "shipit.toml": toml(r.host.Addr, r.domain, cmd+"\n")})
		r.mustShipit("deploy", "-s", "production")
		z.answersNow(r.domain, "4")
	})
	phase("rollback to version 2", func() {
		r.mustShipit("rollback", "-s", "production")
		z.answersNow(r.domain, "2")
	})
	zdCheck(t, string(kind)+": whole run", load.Stop())
	r.commit(map[string]string{"version.txt": "5\n", "shipit.toml": toml(r.host.Addr, r.domain, "")})
	r.mustShipit("deploy", "-s", "production")
	z.answersNow(r.domain, "5")
	if why := f.consistent(); why != "" {
		t.Fatalf("%s: at the end: %s", kind, why)
	}
}

// A web service that publishes ports deploys without them (they would
// collide between releases and bypass Traefik), and the deploy says so.
func TestPublishedPortsAreRemovedAndSaid(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	// An isolated host: its own engine, on which no Traefik runs (the
	// default engine may have one of another test's).
	host := env.StartIsolatedHost(t, 15)
	a := newApp(t, env, "ports", "/var/deploy", []*harness.SSHD{host}, "", "")
	port := harness.FreePort(t)
	a.commit(map[string]string{"docker-compose.yml": fmt.Sprintf("services:\n  web:\n    build: .\n    ports: [\"127.0.0.1:%d:8080\"]\n", port)})
	out := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "deploy output", out, fmt.Sprintf(`the web service "web" publishes 127.0.0.1:%d:8080 in docker-compose.yml: the override removes them`, port),
		// No Traefik on this host: the deploy says nothing may route to it.
		`WARNING: no running "traefik" container on host `+host.Addr)
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Errorf("port %d is published although the override removes it", port)
	}

	// --trace: every remote operation with its duration, and per step the
	// time on the host against the time here.
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	out = a.mustShipit("--trace", "deploy", "-s", "production")
	mustContain(t, "traced deploy", out, "trace deploy:override ", "trace deploy:health ", "= on the host ", " operations) + here ",
		"docker compose version", "put /var/deploy/ports/releases/")
	if !regexp.MustCompile(`trace +[0-9.]+(ms|µs|s)  `).MatchString(out) {
		t.Errorf("no timed remote operation in the trace:\n%s", out)
	}
}
