package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// routedApp is the graceful app (harness.GracefulAppFiles) on an isolated
// host behind the real Traefik that `shipit setup` started there, deployed
// once: version 1 answers on its domain.
type routedApp struct {
	*app
	host   *harness.SSHD
	url    string // Traefik's HTTP entrypoint, published on this machine
	domain string
}

// routedToml is the routed app's shipit.toml; healthExtra adds lines to
// [deploy.health_check].
func routedToml(name, addr, domain, healthExtra string) string {
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

// newRoutedApp takes isolated host n, runs setup and the first deploy of
// app name; toml writes its shipit.toml, extra adds files to its commit.
func newRoutedApp(t testing.TB, env *harness.Env, n int, name string, toml func(addr, domain string) string, extra map[string]string) *routedApp {
	t.Helper()
	return newRoutedAppOf(t, env, n, name, harness.Busybox, toml, extra)
}

// newRoutedAppOf is newRoutedApp with the graceful app in an image of kind
// k (harness.GracefulAppFilesOf).
func newRoutedAppOf(t testing.TB, env *harness.Env, n int, name string, k harness.ImageKind, toml func(addr, domain string) string, extra map[string]string) *routedApp {
	t.Helper()
	host := env.StartIsolatedHost(t, n)
	env.AllowContainerTraffic(t, host)
	env.LoadImage(t, host, harness.TraefikImage)
	if k == harness.ShellNoCurl {
		harness.EnsureDashImage(t)
		env.LoadImage(t, host, harness.DashImage)
	}
	r := &routedApp{host: host, domain: name + ".example.com"}
	r.app = &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home-"+name), name: name}
	if err := os.MkdirAll(r.home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := harness.GracefulAppFilesOf(t, k, "1")
	files["shipit.toml"] = toml(host.Addr, r.domain)
	for k, v := range extra {
		files[k] = v
	}
	harness.GitRepo(t, r.dir, files)
	httpPort, httpsPort := harness.FreePort(t), harness.FreePort(t)
	r.env2 = []string{fmt.Sprintf("SHIPIT_TRAEFIK_PORTS=%d:%d", httpPort, httpsPort)}
	mustContain(t, "setup", r.mustShipit("setup", "-s", "production"), "started container traefik ("+harness.TraefikImage+")")
	r.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	r.mustShipit("deploy", "-s", "production")
	harness.WaitAnswer(t, r.url, r.domain, "version 1", 60*time.Second)
	return r
}
