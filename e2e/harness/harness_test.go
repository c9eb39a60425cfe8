package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSSHDLoginAndKnownHosts(t *testing.T) {
	e := New(t)
	s := e.StartSSHD(t, SSHDOpts{ListenIP: "127.0.0.2"})
	if !strings.HasPrefix(s.Addr, "127.0.0.2:") || s.Host != "127.0.0.2" || s.Port == 0 {
		t.Fatalf("unexpected address %+v", s)
	}
	kh, err := os.ReadFile(e.KnownHosts)
	if err != nil || !strings.Contains(string(kh), s.HostKeyLine) {
		t.Fatalf("known_hosts lacks %q: %q %v", s.HostKeyLine, kh, err)
	}
	if got := strings.TrimSpace(e.SSH(t, s, "echo hello; id -u")); got != "hello\n0" {
		t.Fatalf("ssh output %q", got)
	}
	// Default engine, real /var/deploy.
	if s.DockerHost != "" || s.Isolated {
		t.Fatalf("plain sshd should use the default engine: %+v", s)
	}
	e.AddKnownHost(s) // idempotent
	kh2, _ := os.ReadFile(e.KnownHosts)
	if strings.Count(string(kh2), s.HostKeyLine) != 1 {
		t.Fatalf("AddKnownHost duplicated the line:\n%s", kh2)
	}

	// An sshd kept out of known_hosts is refused by a strict client.
	u := e.StartSSHD(t, SSHDOpts{NoKnownHost: true})
	out, err := exec.Command("ssh", append(e.SSHArgs(u), "true")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Host key verification failed") {
		t.Fatalf("expected host key verification failure, got %v: %s", err, out)
	}
	e.AddKnownHost(u)
	e.SSH(t, u, "true")
}

func TestForwardOnlyJumpHost(t *testing.T) {
	e := New(t)
	jump := e.StartSSHD(t, SSHDOpts{ForwardOnly: true})
	target := e.StartSSHD(t, SSHDOpts{ListenIP: "127.0.0.3"})

	out, err := exec.Command("ssh", append(e.SSHArgs(jump), "echo should-not-run")...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "should-not-run") {
		t.Fatalf("forward-only host ran a command: %v: %s", err, out)
	}

	// ssh -J: the jump hop uses the same key/known_hosts via the ssh config file.
	cfg := filepath.Join(e.Dir, "jump_config")
	conf := "Host *\n  IdentityFile " + e.ClientKey + "\n  IdentitiesOnly yes\n  UserKnownHostsFile " + e.KnownHosts +
		"\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", cfg, "-J", "root@" + jump.Addr, "-p", strconv.Itoa(target.Port), "root@" + target.Host, "echo via-jump"}
	got, err := exec.Command("ssh", args...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "via-jump" {
		t.Fatalf("ssh -J through forward-only host: %v: %s\njump log:\n%s", err, got, jump.LogTail())
	}
}

func TestIsolatedHosts(t *testing.T) {
	e := New(t)
	hosts := e.StartIsolatedHosts(t, 1, 2)
	h1, h2 := hosts[0], hosts[1]
	if h1.DockerHost == h2.DockerHost || h1.DockerHost == "" {
		t.Fatalf("hosts share an engine: %q %q", h1.DockerHost, h2.DockerHost)
	}

	// Each host runs a container through its own engine, over ssh.
	for _, h := range hosts {
		e.SSH(t, h, "docker run -d --name probe --label host="+h.Addr+" "+BaseImage+" sleep 60")
	}
	for _, h := range hosts {
		out := strings.TrimSpace(e.Docker(t, h, "ps", "-a", "--format", "{{.Names}} {{.Label \"host\"}}"))
		if out != "probe "+h.Addr {
			t.Errorf("engine of %s sees %q, want only its own probe", h.Addr, out)
		}
		// And the remote shell agrees.
		if got := strings.TrimSpace(e.SSH(t, h, "docker ps -q | wc -l")); got != "1" {
			t.Errorf("%s: docker ps over ssh shows %s containers", h.Addr, got)
		}
	}
	if out := e.Docker(t, nil, "ps", "-a", "--format", "{{.Label \"host\"}}"); strings.Contains(out, h1.Addr) || strings.Contains(out, h2.Addr) {
		t.Errorf("default engine sees isolated probes: %q", out)
	}

	// /var/deploy is per host.
	e.SSH(t, h1, "mkdir -p /var/deploy && echo one > /var/deploy/x")
	if got := strings.TrimSpace(e.SSH(t, h1, "cat /var/deploy/x")); got != "one" {
		t.Fatalf("host 1 reads %q", got)
	}
	if got := strings.TrimSpace(e.SSH(t, h2, "test -e /var/deploy/x && echo present || echo absent")); got != "absent" {
		t.Errorf("host 2 sees host 1's /var/deploy/x")
	}
	if _, err := os.Stat("/var/deploy/x"); err == nil {
		t.Errorf("the real /var/deploy sees host 1's file")
	}
	if b, err := os.ReadFile(filepath.Join(h1.DeployRoot, "x")); err != nil || string(b) != "one\n" {
		t.Errorf("DeployRoot of host 1: %q %v", b, err)
	}
	// HostRun sees the host's view too.
	if got := strings.TrimSpace(e.HostRun(t, h1, "cat /var/deploy/x; echo $DOCKER_HOST")); got != "one\n"+h1.DockerHost {
		t.Errorf("HostRun on host 1: %q", got)
	}
	// The host's engine resolves bind mounts in the host's /var/deploy.
	if got := strings.TrimSpace(e.SSH(t, h1, "docker run --rm -v /var/deploy:/d "+BaseImage+" cat /d/x")); got != "one" {
		t.Errorf("bind mount on host 1's engine reads %q", got)
	}
	// Compose v2 works against the host's engine.
	e.SSH(t, h2, `mkdir -p /var/deploy/app && cd /var/deploy/app && printf 'services:\n  w:\n    image: `+BaseImage+`\n    command: ["sleep","60"]\n' > docker-compose.yml && docker compose -p app up -d -q 2>&1 || docker compose -p app up -d`)
	if got := strings.TrimSpace(e.Docker(t, h2, "ps", "--filter", "label=com.docker.compose.project=app", "--format", "{{.Names}}")); got != "app-w-1" {
		t.Errorf("compose on host 2: %q", got)
	}
}

func TestGitRepo(t *testing.T) {
	dir := t.TempDir()
	GitRepo(t, dir, map[string]string{"a.txt": "a\n", "sub/b.txt": "b\n"})
	GitRepo(t, dir, map[string]string{"a.txt": "a2\n"})
	out, err := exec.Command("git", "-C", dir, "log", "--oneline").Output()
	if err != nil || strings.Count(string(out), "\n") != 2 {
		t.Fatalf("git log: %v %q", err, out)
	}
	br, _ := exec.Command("git", "-C", dir, "branch", "--show-current").Output()
	if strings.TrimSpace(string(br)) != "main" {
		t.Fatalf("branch %q", br)
	}
}

// The demo app (examples/demo) builds and serves /health on an isolated host,
// with compose v2 and with compose v1.
func TestDemoOnIsolatedHost(t *testing.T) {
	e := New(t)
	h := e.StartIsolatedHost(t, 3)
	src, err := filepath.Abs("../../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	// Copy through the host's view: /var/deploy/demo is h.DeployRoot/demo.
	runCmd(t, "", nil, "cp", "-r", src, filepath.Join(h.DeployRoot, "demo"))
	for _, c := range []struct{ name, compose string }{{"v2", "docker compose -p demo2"}, {"v1", "docker-compose -p demo1"}} {
		t.Run(c.name, func(t *testing.T) {
			e.SSH(t, h, "cd /var/deploy/demo && "+c.compose+" build -q && "+c.compose+" up -d 2>&1")
			health := e.SSH(t, h, "cd /var/deploy/demo && for i in $(seq 1 50); do "+c.compose+
				" exec -T web wget -qO- http://127.0.0.1:8080/health 2>/dev/null && exit 0; sleep 0.1; done; exit 1")
			if strings.TrimSpace(health) != "ok" {
				t.Fatalf("health %q", health)
			}
			index := e.SSH(t, h, "cd /var/deploy/demo && "+c.compose+" exec -T web wget -qO- http://127.0.0.1:8080/")
			if !strings.Contains(index, "version: demo-v1") {
				t.Fatalf("index %q", index)
			}
			ps := e.SSH(t, h, "cd /var/deploy/demo && "+c.compose+" ps --services --filter status=running")
			if !strings.Contains(ps, "web") || !strings.Contains(ps, "worker") {
				t.Fatalf("running services %q", ps)
			}
		})
	}
}
