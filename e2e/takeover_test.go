package e2e

// Taking over a host the original shipit (Rust, v0.4) deployed (issue 8):
// the host is laid out exactly as the original leaves it (absolute
// `current`, its shipit.lock with a null previous_release and an offset
// timestamp, its override, a compose project named after the release
// directory, its own Traefik without an API), then shipit deploys next to
// it and stops it only once ours is healthy and routed, with a probe
// through Traefik that sees no failure; and rolls back to it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// originalOverride is templates/docker-compose.override.yml.j2 of the
// original as it renders for a remote build (its exact bytes, blank lines
// included).
func originalOverride(app, domain, sharedPath string, port int) string {
	return fmt.Sprintf(`networks:
  traefik:
    external: true

services:
  web:

    ports: !reset []
    networks:
      - traefik
      - default
    env_file:
      - %[3]s/.env
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.%[1]s.rule=Host(`+"`%[2]s`"+`)"
      - "traefik.http.routers.%[1]s.entrypoints=web"
      - "traefik.http.services.%[1]s.loadbalancer.server.port=%[4]d"
      - "traefik.http.services.%[1]s.loadbalancer.healthcheck.path=/health"
      - "traefik.http.services.%[1]s.loadbalancer.healthcheck.interval=2s"
    healthcheck:

      test: ["CMD-SHELL", "curl -sf http://localhost:%[4]d/health > /dev/null 2>&1 || wget -qO /dev/null http://localhost:%[4]d/health 2>&1"]

      interval: 2s
      timeout: 5s
      retries: 15
      start_period: 5s

`, app, domain, sharedPath, port)
}

func TestTakeOverAHostOfTheOriginalShipit(t *testing.T) {
	t.Parallel() // its own isolated hosts
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 27)
	env.AllowContainerTraffic(t, host)
	env.LoadImage(t, host, harness.TraefikImage)
	const name, domain = "legacy", "legacy.example.com"
	appPath := "/var/deploy/" + name
	root := filepath.Join(host.DeployRoot, name)

	// The project, version 0, as the developer has it.
	a := &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home"), name: name}
	if err := os.MkdirAll(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := harness.GracefulAppFiles(t, "0")
	// The original's documented config keys: integer seconds, os.
	files["shipit.toml"] = fmt.Sprintf(`[app]
name = %q
branch = "main"

[deploy]
keep_releases = 5

[deploy.health_check]
port = %d
path = "/health"
interval = 1
retries = 15
timeout = 60

[stages.production]
user = "root"
os = "debian"
hosts = [{ address = %q }]

[stages.production.traefik]
domain = %q
`, name, harness.GracefulAppPort, host.Addr, domain)
	harness.GitRepo(t, a.dir, files)

	// The original's Traefik: its own container, Docker provider, no API.
	httpPort := harness.FreePort(t)
	env.Docker(t, host, "network", "create", "traefik")
	env.Docker(t, host, "run", "-d", "--name", "traefik", "--restart", "unless-stopped", "--network", "traefik",
		"-p", fmt.Sprintf("%d:80", httpPort), "-v", strings.TrimPrefix(host.DockerHost, "unix://")+":/var/run/docker.sock:ro",
		harness.TraefikImage, "--providers.docker=true", "--providers.docker.exposedbydefault=false",
		"--providers.docker.network=traefik", "--entrypoints.web.address=:80")
	url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	// The host as the original leaves it after one deploy.
	const r0 = "20250219-140000"
	rel := appPath + "/releases/" + r0
	sha := strings.TrimSpace(runGit(t, a.dir, "rev-parse", "HEAD"))
	env.HostRun(t, host, fmt.Sprintf("mkdir -p %[1]s/releases %[1]s/shared && git init -q --bare %[1]s/repo && "+
		"printf '# Managed by shipit\\n\\n' > %[1]s/shared/.env", appPath))
	runGit(t, a.dir, "push", "-q", filepath.Join(root, "repo"), "HEAD:refs/heads/main")
	env.HostRun(t, host, fmt.Sprintf("mkdir -p %[2]s && git --work-tree=%[2]s --git-dir=%[1]s/repo checkout -f main -- . && "+
		"ln -sf %[1]s/shared/.env %[2]s/.env && ln -sfn %[2]s %[1]s/current_tmp && mv -Tf %[1]s/current_tmp %[1]s/current", appPath, rel))
	if err := os.WriteFile(filepath.Join(root, "releases", r0, "docker-compose.override.yml"),
		[]byte(originalOverride(name, domain, appPath+"/shared", harness.GracefulAppPort)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := fmt.Sprintf("{\n  \"current_release\": %q,\n  \"previous_release\": null,\n  \"git_sha\": %q,\n"+
		"  \"deployed_at\": \"2025-02-19T14:00:00.123456789-03:00\",\n  \"secrets_hash\": null\n}\n", r0, sha)
	if err := os.WriteFile(filepath.Join(root, "shipit.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	env.HostRun(t, host, "cd "+rel+" && docker compose up -d --build >/dev/null 2>&1")
	harness.WaitAnswer(t, url, domain, "version 0", 90*time.Second)

	running := func() []string {
		out := env.Docker(t, host, "ps", "--format", `{{.Label "com.docker.compose.project"}}`)
		var ps []string
		for _, p := range strings.Fields(out) {
			if p != "" && !strings.HasPrefix(p, "traefik") {
				ps = append(ps, p)
			}
		}
		return ps
	}

	// Our deploy next to it: no failed request, then only ours runs.
	a.commit(map[string]string{"version.txt": "1\n"})
	load := harness.StartLoad(t, harness.LoadOpts{URL: url, Host: domain})
	out := a.mustShipit("deploy", "-s", "production")
	rep := load.Stop()
	t.Logf("probe during the takeover deploy: %v", rep)
	if rep.Failed != 0 || rep.SlowCompleted != rep.SlowStarted {
		t.Errorf("taking over dropped requests: %d of %d failed %v; slow %d/%d", rep.Failed, rep.Sent, rep.ByKind, rep.SlowCompleted, rep.SlowStarted)
	}
	// Its router yields to ours (one priority higher) once ours is routed:
	// drained at once, not after a timeout.
	mustContain(t, "takeover deploy", out, "drained "+r0+" in ")
	l, _ := readLock(t, root)
	if l.PreviousRelease != r0 || l.CurrentRelease == r0 {
		t.Fatalf("after the takeover shipit.lock says current %s previous %s, want previous %s", l.CurrentRelease, l.PreviousRelease, r0)
	}
	if ps := running(); len(ps) != 1 || ps[0] != name+"-"+l.CurrentRelease {
		t.Fatalf("after the takeover these projects run: %v, want only %s-%s\n%s", ps, name, l.CurrentRelease, out)
	}
	harness.WaitAnswer(t, url, domain, "version 1", 10*time.Second)
	mustContain(t, "releases", a.mustShipit("releases", "-s", "production"), "< "+r0, "deployed by the original shipit", "* "+l.CurrentRelease)

	// Back to the original's release: its own project and images.
	load = harness.StartLoad(t, harness.LoadOpts{URL: url, Host: domain})
	a.mustShipit("rollback", "-s", "production")
	rep = load.Stop()
	t.Logf("probe during the rollback to the original's release: %v", rep)
	if rep.Failed != 0 {
		t.Errorf("rolling back to the original's release dropped requests: %d of %d %v", rep.Failed, rep.Sent, rep.ByKind)
	}
	for i := 0; i < 20; i++ {
		if code, body := harness.HTTPGet(url, domain); code != 200 || strings.TrimSpace(body) != "version 0" {
			t.Fatalf("after the rollback: %d %q, want version 0", code, body)
		}
	}
	if ps := running(); len(ps) != 1 || ps[0] != r0 {
		t.Fatalf("after the rollback these projects run: %v, want only %s", ps, r0)
	}
	l, _ = readLock(t, root)
	if l.CurrentRelease != r0 {
		t.Fatalf("shipit.lock names %s after the rollback", l.CurrentRelease)
	}
}
