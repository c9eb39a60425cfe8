package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// Three hosts that look like separate machines (own /var/deploy, own Docker
// engine) deploy in parallel; each ends up with exactly its own release,
// over exactly two SSH handshakes per host: the pooled connection every
// command of the deploy shares, and the lock holder's own (its heartbeats
// never queue behind uploads).
func TestParallelDeployToIsolatedHosts(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	hosts := env.StartIsolatedHosts(t, 1, 2, 3)
	a := newApp(t, env, "fleet", "/var/deploy", hosts, "", "")
	out := a.mustShipit("--ssh-stats", "deploy", "-s", "production")
	for _, h := range hosts {
		mustContain(t, "deploy output", out, h.Addr+" | ✓ [12/12] deploy:cleanup", "ssh handshakes "+"root@"+h.Addr+": 2")
	}
	if n := strings.Count(out, "ssh handshakes"); n != 3 {
		t.Fatalf("want handshake counts for 3 hosts, got %d:\n%s", n, out)
	}
	var releases []string
	for i, h := range hosts {
		rel := strings.TrimSpace(env.HostRun(t, h, "readlink /var/deploy/fleet/current"))
		releases = append(releases, rel)
		ids := strings.Fields(env.Docker(t, h, "ps", "-q", "--filter", "label=shipit.app=fleet"))
		if len(ids) != 2 {
			t.Fatalf("host %d runs %d fleet containers, want 2 (web, worker)", i+1, len(ids))
		}
		// Its files are its own: not on the real /var/deploy, not on the others.
		if _, err := os.Stat(filepath.Join(h.DeployRoot, "fleet", "shipit.lock")); err != nil {
			t.Fatalf("host %d: lock not in its own deploy root: %v", i+1, err)
		}
	}
	if _, err := os.Stat("/var/deploy/fleet"); err == nil {
		t.Fatal("an isolated host wrote to the machine's real /var/deploy")
	}
	for _, r := range releases {
		if r != releases[0] {
			t.Fatalf("hosts got different release names: %v", releases)
		}
	}
}

// build = "local": images are built here and streamed into a host whose
// engine has never seen them; unchanged images are not sent again.
func TestLocalBuildTransfersImages(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 4)
	a := newApp(t, env, "localbuild", "/var/deploy", []*harness.SSHD{host}, "", "build = \"local\"\n")
	t.Cleanup(func() {
		out := env.Docker(t, nil, "image", "ls", "-q", "--filter", "reference=localbuild/*")
		if ids := strings.Fields(out); len(ids) > 0 {
			env.Docker(t, nil, append([]string{"image", "rm", "-f"}, ids...)...)
		}
	})
	out := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "first local deploy", out, "images: 1 sent, 0 already on host")
	lock := strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/localbuild/current"))
	rel := filepath.Base(lock)
	img := strings.TrimSpace(env.Docker(t, host, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=localbuild/web:"+rel))
	if img != "localbuild/web:"+rel {
		t.Fatalf("host engine lacks localbuild/web:%s (got %q)", rel, img)
	}
	ov := env.HostRun(t, host, "cat /var/deploy/localbuild/current/docker-compose.override.yml")
	mustContain(t, "override", ov, "localbuild/web:"+rel)
	waitNextSecond(rel)
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "second local deploy", out, "images: 0 sent, 1 already on host")
}

// A jump host that only forwards, a target that only has docker-compose v1,
// and a branch name full of shell metacharacters.
func TestJumpHostComposeV1AndHostileBranch(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	jump := env.StartSSHD(t, harness.SSHDOpts{ForwardOnly: true})
	// This host has only docker-compose v1: its PATH starts with a docker
	// wrapper that, like a docker without the v2 plugin, has no `compose`.
	v1bin := filepath.Join(env.Dir, "v1bin")
	os.MkdirAll(v1bin, 0o755)
	wrapper := "#!/bin/sh\nif [ \"$1\" = compose ]; then echo \"docker: 'compose' is not a docker command.\" >&2; exit 1; fi\nexec /usr/bin/docker \"$@\"\n"
	if err := os.WriteFile(filepath.Join(v1bin, "docker"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	target := env.StartSSHD(t, harness.SSHDOpts{ListenIP: "127.0.0.2", ExtraConfig: "SetEnv PATH=" + v1bin + ":/usr/local/bin:/usr/bin:/bin"})
	if out := env.SSH(t, target, "docker compose version 2>&1 || true"); !strings.Contains(out, "not a docker command") && !strings.Contains(out, "unknown") {
		t.Fatalf("target still has the compose v2 plugin: %s", out)
	}
	marker := filepath.Join(env.Dir, "PWNED")
	branch := fmt.Sprintf("feat;touch${IFS}%s;x", marker)
	deployTo := t.TempDir()
	a := newApp(t, env, "jumpv1", deployTo, []*harness.SSHD{target}, fmt.Sprintf("proxy = %q\n", "root@"+jump.Addr), "")
	cleanupApp(t, env, target, "jumpv1")
	runGit(t, a.dir, "checkout", "-q", "-b", branch)
	toml, _ := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	a.commit(map[string]string{"shipit.toml": strings.Replace(string(toml), `branch = "main"`, fmt.Sprintf("branch = %q", branch), 1)})

	out := a.mustShipit("--ssh-stats", "-v", "deploy", "-s", "production")
	mustContain(t, "deploy via jump host", out, "docker-compose", "[12/12] deploy:cleanup", "ssh handshakes root@"+jump.Addr+": 1", "ssh handshakes root@"+target.Addr+": 2") // the jump once; the target's second is the lock holder's
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a shell metacharacter in the branch name was executed")
	}
	cur, err := os.Readlink(filepath.Join(deployTo, "jumpv1", "current"))
	if err != nil || !regexp.MustCompile(`^releases/\d{8}-\d{6}$`).MatchString(cur) {
		t.Fatalf("current = %q (%v)", cur, err)
	}
	ids := webContainers(t, env, target, "jumpv1", filepath.Base(cur))
	if len(ids) != 1 || health(t, env, target, ids[0]) != "healthy" {
		t.Fatalf("v1 release not healthy: %v", ids)
	}
	// The jump host itself runs nothing.
	if out, code := (&app{t: t, env: env, dir: a.dir, home: a.home}).shipit("exec", "-s", "production", "--", "true"); code != 0 {
		t.Fatalf("exec via jump host failed:\n%s", out)
	}
}
