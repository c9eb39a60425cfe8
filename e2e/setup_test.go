package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// traefikStandin is a locally built image given as the Traefik image:
// Traefik itself cannot be pulled here. Its entrypoint ignores the Traefik
// flags and serves HTTP on :80.
const traefikStandin = "shipit-test/traefik:v3-standin"

// buildTraefikStandin builds the stand-in on the default engine and loads
// it into the engine of isolated host s.
func buildTraefikStandin(t *testing.T, env *harness.Env, s *harness.SSHD) {
	t.Helper()
	dir := t.TempDir()
	df := "FROM " + harness.BaseImage + "\nENTRYPOINT [\"sh\", \"-c\", \"exec httpd -f -p 80 -h /\", \"traefik-standin\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	env.Docker(t, nil, "build", "-q", "-t", traefikStandin, dir)
	cmd := exec.Command("sh", "-c", "DOCKER_HOST= docker save "+traefikStandin+" | DOCKER_HOST=\"$DST\" docker load -q")
	cmd.Env = append(os.Environ(), "DST="+s.DockerHost)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loading %s into the isolated host: %v\n%s", traefikStandin, err, out)
	}
}

// shipitEnv is a.shipit with extra environment variables.
func (a *app) shipitEnv(extra []string, args ...string) (string, int) {
	a.t.Helper()
	full := append([]string{"--known-hosts", a.env.KnownHosts, "-i", a.env.ClientKey, "--ssh-config", a.env.SSHConfig}, args...)
	cmd := exec.Command(shipitBin, full...)
	cmd.Dir = a.dir
	cmd.Env = append(append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1"), extra...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("running shipit: %v", err)
	}
	a.t.Logf("$ %s shipit %s (exit %d)\n%s", strings.Join(extra, " "), strings.Join(args, " "), code, out)
	return string(out), code
}

func setupToml(app, addr string, broken []string, tls bool) string {
	return fmt.Sprintf(`[app]
name = %q
branch = "main"

[deploy]
deploy_to = "/var/deploy"
keep_releases = 2

[deploy.health_check]
port = 8080
path = "/health"
interval = "500ms"
retries = 20

[stages.production]
user = "root"
hosts = [{ address = %q }]

[stages.production.traefik]
domain = "setup.example.com"
tls = %v
acme_email = "ops@example.com"
image = %q

[stages.broken]
user = "root"
hosts = [{ address = %q }, { address = %q }]
`, app, addr, tls, traefikStandin, broken[0], broken[1])
}

type traefikInspect struct {
	Config struct {
		Image  string
		Cmd    []string
		Labels map[string]string
	}
	HostConfig struct {
		PortBindings  map[string][]struct{ HostIP, HostPort string }
		RestartPolicy struct{ Name string }
	}
	Mounts []struct {
		Type, Name, Source, Destination string
		RW                              bool
	}
	NetworkSettings struct{ Networks map[string]json.RawMessage }
	State           struct{ Running bool }
}

func inspectTraefik(t *testing.T, env *harness.Env, s *harness.SSHD) traefikInspect {
	t.Helper()
	var cs []traefikInspect
	if err := json.Unmarshal([]byte(env.Docker(t, s, "inspect", "--type", "container", "traefik")), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("docker inspect traefik: %v (%d containers)", err, len(cs))
	}
	return cs[0]
}

func hasArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

// TestSetupAndDoctor provisions an isolated host twice (the second run
// changes nothing), verifies the Traefik container, switches tls off (the
// container is recreated without the resolver), then runs doctor on the
// deployed host, with planted problems, and on an unreachable host.
func TestSetupAndDoctor(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 5)
	buildTraefikStandin(t, env, host)
	const name = "setupdoc"
	a := newApp(t, env, name, "/var/deploy", []*harness.SSHD{host}, "", "")
	unreachable := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	unknownKey := env.StartSSHD(t, harness.SSHDOpts{NoKnownHost: true})
	broken := []string{unreachable, unknownKey.Addr}
	a.commit(map[string]string{"shipit.toml": setupToml(name, host.Addr, broken, true)})
	httpPort, httpsPort := harness.FreePort(t), harness.FreePort(t)
	ports := []string{fmt.Sprintf("SHIPIT_TRAEFIK_PORTS=%d:%d", httpPort, httpsPort)}
	appPath := "/var/deploy/" + name

	// 1. First run provisions everything.
	out, code := a.shipitEnv(ports, "setup", "-s", "production")
	if code != 0 {
		t.Fatalf("setup failed (exit %d)", code)
	}
	mustContain(t, "first setup", out,
		"✓ docker engine", "✓ docker compose", "✓ docker group       root is root",
		"~ traefik network    changed: created network traefik",
		"~ directory          changed: created "+appPath,
		"~ git repo           changed: created bare repository "+appPath+"/repo",
		"~ env file           changed: created "+appPath+"/shared/.env (empty, 0600)",
		"~ traefik            changed: started container traefik ("+traefikStandin+")",
		"change(s) made")

	c := inspectTraefik(t, env, host)
	if c.Config.Image != traefikStandin || !c.State.Running {
		t.Fatalf("traefik container: image %q running %v", c.Config.Image, c.State.Running)
	}
	for _, want := range []string{
		"--providers.docker=true", "--providers.docker.exposedbydefault=false", "--providers.docker.network=traefik",
		"--providers.providersThrottleDuration=500ms", // bounds the switch (recipes/setup.lua)
		"--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443",
		"--entrypoints.traefik.address=127.0.0.1:8080", "--api.insecure=true",
		"--metrics.prometheus=true", "--metrics.prometheus.entryPoint=traefik", "--metrics.prometheus.addServicesLabels=true",
		"--certificatesresolvers.letsencrypt.acme.email=ops@example.com",
		"--certificatesresolvers.letsencrypt.acme.storage=/letsencrypt/acme.json",
		"--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
	} {
		if !hasArg(c.Config.Cmd, want) {
			t.Errorf("traefik args %q lack %q", c.Config.Cmd, want)
		}
	}
	if r := c.HostConfig.RestartPolicy.Name; r != "unless-stopped" {
		t.Errorf("restart policy %q", r)
	}
	for port, want := range map[string]int{"80/tcp": httpPort, "443/tcp": httpsPort} {
		b := c.HostConfig.PortBindings[port]
		if len(b) != 1 || b[0].HostPort != fmt.Sprint(want) {
			t.Errorf("port %s published as %+v, want host port %d", port, b, want)
		}
	}
	if _, ok := c.NetworkSettings.Networks["traefik"]; !ok || len(c.NetworkSettings.Networks) != 1 {
		t.Errorf("traefik container networks: %v", c.NetworkSettings.Networks)
	}
	if c.Config.Labels["shipit.config-hash"] == "" {
		t.Errorf("no shipit.config-hash label: %v", c.Config.Labels)
	}
	sock := strings.TrimPrefix(host.DockerHost, "unix://")
	var sockOK, acmeOK bool
	for _, m := range c.Mounts {
		switch m.Destination {
		case "/var/run/docker.sock":
			sockOK = m.Type == "bind" && m.Source == sock && !m.RW
		case "/letsencrypt":
			acmeOK = m.Type == "volume" && m.Name == "traefik-letsencrypt"
		}
	}
	if !sockOK || !acmeOK {
		t.Errorf("mounts %+v: want the engine's socket %s read-only at /var/run/docker.sock (%v) and volume traefik-letsencrypt at /letsencrypt (%v)", c.Mounts, sock, sockOK, acmeOK)
	}
	if got := strings.TrimSpace(env.HostRun(t, host, "stat -c %a "+appPath+"/shared/.env")); got != "600" {
		t.Errorf("shared/.env mode %s, want 600", got)
	}
	if got := strings.TrimSpace(env.HostRun(t, host, "git --git-dir="+appPath+"/repo rev-parse --is-bare-repository")); got != "true" {
		t.Errorf("repo is not a bare repository: %q", got)
	}
	env.HostRun(t, host, "echo SECRET=kept > "+appPath+"/shared/.env")

	// 2. Second run (with --install-docker, which finds Docker present):
	// every item ok, nothing changed, .env untouched.
	out, code = a.shipitEnv(ports, "setup", "-s", "production", "--install-docker")
	if code != 0 {
		t.Fatalf("second setup failed (exit %d)", code)
	}
	mustContain(t, "second setup", out, "(--install-docker: already installed)", "✓ traefik            traefik running",
		"ok, nothing changed", "nothing changed: every host was already set up")
	if strings.Contains(out, "~ ") {
		t.Fatalf("second setup changed something:\n%s", out)
	}
	if got := env.HostRun(t, host, "cat "+appPath+"/shared/.env"); got != "SECRET=kept\n" {
		t.Fatalf("setup touched shared/.env: %q", got)
	}
	if id := inspectTraefik(t, env, host).Config.Labels["shipit.config-hash"]; id != c.Config.Labels["shipit.config-hash"] {
		t.Fatalf("config hash changed on a no-op run")
	}

	// 3. tls = false: the container is recreated without the resolver, and
	// the change is named.
	a.commit(map[string]string{"shipit.toml": setupToml(name, host.Addr, broken, false)})
	out = mustShipitEnv(t, a, ports, "setup", "-s", "production")
	mustContain(t, "setup after tls=false", out, "~ traefik            changed: recreated container traefik: args, mounts", "1 change(s) made")
	c2 := inspectTraefik(t, env, host)
	for _, arg := range c2.Config.Cmd {
		if strings.Contains(arg, "certificatesresolvers") {
			t.Fatalf("tls=false but traefik has %q", arg)
		}
	}
	if !hasArg(c2.Config.Cmd, "--providers.docker.exposedbydefault=false") || len(c2.Mounts) != 1 {
		t.Fatalf("traefik after tls=false: args %q mounts %+v", c2.Config.Cmd, c2.Mounts)
	}
	out = mustShipitEnv(t, a, ports, "setup", "-s", "production")
	mustContain(t, "third setup", out, "nothing changed")

	// 4. Doctor on a set-up, deployed host: every item passes.
	a.mustShipit("deploy", "-s", "production")
	out, code = a.shipit("doctor", "-s", "production")
	if code != 0 {
		t.Fatalf("doctor on a healthy host exited %d", code)
	}
	mustContain(t, "doctor (healthy)", out, host.Addr+"\n", "✓ reachable", "✓ host key known", "✓ auth               logged in as root",
		"✓ login shell", "✓ docker             engine", "✓ compose", "✓ directories", "✓ traefik network", "✓ traefik            running "+traefikStandin,
		"✓ shipit.lock", "✓ current release", "healthy", "doctor production: all checks passed on 1 host(s)")
	if strings.Contains(out, "✗") {
		t.Fatalf("doctor on a healthy host reported a failure:\n%s", out)
	}

	// 5. Planted problems: a corrupt shipit.lock and a stopped Traefik.
	env.HostRun(t, host, "printf '{not json' > "+appPath+"/shipit.lock")
	env.Docker(t, host, "stop", "traefik")
	out, code = a.shipit("doctor", "-s", "production")
	if code == 0 {
		t.Fatal("doctor passed with a corrupt shipit.lock and Traefik stopped")
	}
	mustContain(t, "doctor (planted problems)", out,
		"✗ shipit.lock        not valid", "the next `shipit deploy -s production` rewrites it",
		"✗ traefik            container traefik is exited", "fix: `docker logs traefik` to see why, then run `shipit setup -s production`",
		"✓ traefik network", "doctor production: 2 failed check(s) on 1 of 1 host(s)",
		"shipit: error: doctor: 1 of 1 host(s) have failed checks")

	// 6. An unreachable host and one with an unknown host key: the
	// connection is the report, with its fix.
	out, code = a.shipit("doctor", "-s", "broken")
	if code == 0 {
		t.Fatal("doctor passed on unreachable hosts")
	}
	mustContain(t, "doctor (unreachable)", out,
		unreachable+"\n  ✗ reachable          ", "connection refused",
		"fix: check the host address and port in shipit.toml",
		unknownKey.Addr+"\n  ✓ reachable          sshd answered\n  ✗ host key known     ssh root@"+unknownKey.Addr+": host key for "+unknownKey.Addr+" is unknown",
		"fix: verify the fingerprint SHA256:", "--accept-new-host-keys",
		"doctor broken: 2 failed check(s) on 2 of 2 host(s)")

	// 7. A container named traefik that setup did not create is left alone.
	env.Docker(t, host, "rm", "-f", "traefik")
	env.Docker(t, host, "run", "-d", "--name", "traefik", harness.BaseImage, "sleep", "1d")
	out, code = a.shipitEnv(ports, "setup", "-s", "production")
	if code == 0 {
		t.Fatal("setup replaced a traefik container it did not create")
	}
	mustContain(t, "setup with a foreign traefik", out, "but shipit setup did not create it", "docker rm -f traefik")
	if img := inspectTraefik(t, env, host).Config.Image; img != harness.BaseImage {
		t.Fatalf("the foreign traefik container was replaced (image %s)", img)
	}
}

func mustShipitEnv(t *testing.T, a *app, extra []string, args ...string) string {
	t.Helper()
	out, code := a.shipitEnv(extra, args...)
	if code != 0 {
		t.Fatalf("shipit %s failed (exit %d):\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestSetupWithoutDocker: on a host whose PATH has no docker, setup fails
// at setup:docker with the hint to use --install-docker (the install itself
// cannot run here: it would apt-get install on this machine).
func TestSetupWithoutDocker(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	bin := t.TempDir()
	for _, tool := range []string{"sh", "cat", "id", "printf"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	host := env.StartSSHD(t, harness.SSHDOpts{ExtraConfig: "SetEnv PATH=" + bin})
	if got := env.SSH(t, host, "command -v docker || echo none"); strings.TrimSpace(got) != "none" {
		t.Fatalf("docker still on the host's PATH (%q): the test would not test anything", got)
	}
	a := newApp(t, env, "nodocker", t.TempDir(), []*harness.SSHD{host}, "", "")
	out, code := a.shipit("setup", "-s", "production")
	if code == 0 {
		t.Fatal("setup succeeded on a host without docker")
	}
	mustContain(t, "setup without docker", out, "✓ os", "✗ [2/7] setup:docker",
		"Docker is not installed on "+host.Addr+": rerun with `shipit setup -s production --install-docker`",
		"setup failed on 1 of 1 host(s)")
}
