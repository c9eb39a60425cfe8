package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// monitorJSON mirrors the documented --json fields the tests rely on.
type monitorJSON struct {
	App         string    `json:"app"`
	Stage       string    `json:"stage"`
	CollectedAt time.Time `json:"collected_at"`
	Hosts       []struct {
		Host           string `json:"host"`
		Reachable      bool   `json:"reachable"`
		Error          string `json:"error"`
		CurrentRelease string `json:"current_release"`
		Lock           *struct {
			CurrentRelease string `json:"current_release"`
			GitSHA         string `json:"git_sha"`
		} `json:"lock"`
		Containers []struct {
			ID            string   `json:"id"`
			Name          string   `json:"name"`
			Kind          string   `json:"kind"`
			Service       string   `json:"service"`
			Release       string   `json:"release"`
			Current       bool     `json:"current"`
			State         string   `json:"state"`
			Health        string   `json:"health"`
			UptimeSeconds int64    `json:"uptime_seconds"`
			CPUPercent    *float64 `json:"cpu_percent"`
			MemBytes      *int64   `json:"mem_bytes"`
		} `json:"containers"`
		Disk struct {
			DeployTo struct {
				Path         string `json:"path"`
				UsedBytes    *int64 `json:"used_bytes"`
				FSSizeBytes  *int64 `json:"fs_size_bytes"`
				FSUsePercent *int   `json:"fs_use_percent"`
			} `json:"deploy_to"`
			Docker struct {
				Path        string `json:"path"`
				UsedBytes   *int64 `json:"used_bytes"`
				FSSizeBytes *int64 `json:"fs_size_bytes"`
				ImagesBytes *int64 `json:"images_bytes"`
			} `json:"docker"`
		} `json:"disk"`
		Warnings []string `json:"warnings"`
	} `json:"hosts"`
}

// killSSHD stops an sshd and the per-connection children it forked (they
// run in their own sessions, so they outlive the listener otherwise),
// which drops every established connection like a host going away.
func killSSHD(t *testing.T, s *harness.SSHD) {
	t.Helper()
	var kids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(s.Pid) {
			kids = append(kids, pid)
		}
	}
	syscall.Kill(s.Pid, syscall.SIGTERM)
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGTERM)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !s.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("sshd %s did not exit", s.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// monitorApp deploys an app with a web (health-checked) and a worker
// service to isolated host n, plus an accessory container, and adds a
// stage "degraded" with that host and the extra hosts.
func monitorApp(t *testing.T, env *harness.Env, n int, name string, extra ...*harness.SSHD) (*app, *harness.SSHD, string) {
	t.Helper()
	host := env.StartIsolatedHost(t, n)
	var hs []string
	for _, h := range append([]*harness.SSHD{host}, extra...) {
		hs = append(hs, fmt.Sprintf("{ address = %q }", h.Addr))
	}
	stage := fmt.Sprintf("\n[stages.degraded]\nuser = \"root\"\nhosts = [%s]\n", strings.Join(hs, ", "))
	accessory := fmt.Sprintf("\n[accessories.cache]\nimage = %q\nhost = %q\n", harness.BaseImage, host.Addr)
	a := newApp(t, env, name, "/var/deploy", []*harness.SSHD{host}, stage, accessory)
	a.mustShipit("deploy", "-s", "production")
	rel := filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/"+name+"/current")))
	// The accessory as `shipit accessory boot` names it: <app>-<name>.
	env.Docker(t, host, "run", "-d", "--name", name+"-cache", "--restart", "always", harness.BaseImage, "sleep", "1d")
	return a, host, rel
}

func TestMonitorOnceAndJSON(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	down := env.StartSSHD(t, harness.SSHDOpts{ListenIP: "127.0.0.3"}) // known host, then gone
	a, host, rel := monitorApp(t, env, 13, "monsnap", down)
	killSSHD(t, down)

	out := a.mustShipit("monitor", "-s", "production", "--once")
	mustContain(t, "monitor --once", out, "monsnap · stage production", host.Addr+"  release "+rel,
		"deployed ", "NAME", "HEALTH", "*monsnap-"+rel+"-web-1", "*monsnap-"+rel+"-worker-1",
		"healthy", "running", "monsnap-cache", "(accessory)", "iB", "disk deploy: app ", "docker: ", "% used", "(/var/deploy)")

	out = a.mustShipit("monitor", "-s", "production", "--json")
	var snap monitorJSON
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("--json is not one JSON document: %v\n%s", err, out)
	}
	if snap.App != "monsnap" || snap.Stage != "production" || snap.CollectedAt.IsZero() || len(snap.Hosts) != 1 {
		t.Fatalf("snapshot = %+v", snap)
	}
	h := snap.Hosts[0]
	if h.Host != host.Addr || !h.Reachable || h.Error != "" || h.CurrentRelease != rel || h.Lock == nil || h.Lock.CurrentRelease != rel || h.Lock.GitSHA == "" {
		t.Fatalf("host = %+v", h)
	}
	if len(h.Warnings) != 0 {
		t.Fatalf("warnings on a healthy host: %q", h.Warnings)
	}
	seen := map[string]bool{}
	for _, c := range h.Containers {
		seen[c.Kind+"/"+c.Service] = true
		if c.State != "running" || c.UptimeSeconds < 0 || c.CPUPercent == nil || c.MemBytes == nil || *c.MemBytes <= 0 || len(c.ID) != 12 {
			t.Errorf("container %s: %+v", c.Name, c)
		}
		switch c.Kind + "/" + c.Service {
		case "app/web":
			if c.Health != "healthy" || !c.Current || c.Release != rel || c.Name != "monsnap-"+rel+"-web-1" {
				t.Errorf("web = %+v", c)
			}
		case "app/worker":
			if c.Health != "" || !c.Current {
				t.Errorf("worker = %+v", c)
			}
		case "accessory/cache":
			if c.Name != "monsnap-cache" || c.Release != "" {
				t.Errorf("accessory = %+v", c)
			}
		}
	}
	if len(h.Containers) != 3 || !seen["app/web"] || !seen["app/worker"] || !seen["accessory/cache"] {
		t.Fatalf("containers = %+v", h.Containers)
	}
	d := h.Disk
	if d.DeployTo.Path != "/var/deploy" || d.DeployTo.UsedBytes == nil || *d.DeployTo.UsedBytes <= 0 || d.DeployTo.FSSizeBytes == nil || d.DeployTo.FSUsePercent == nil {
		t.Errorf("deploy_to disk = %+v", d.DeployTo)
	}
	if d.Docker.Path == "" || d.Docker.FSSizeBytes == nil || d.Docker.UsedBytes == nil || d.Docker.ImagesBytes == nil || *d.Docker.ImagesBytes <= 0 {
		t.Errorf("docker disk = %+v", d.Docker)
	}

	// A stage with a host that is down: the other host is still reported
	// in full, the dead one says why, and the exit code says so.
	out, code := a.shipit("monitor", "-s", "degraded", "--once")
	if code != 1 {
		t.Fatalf("monitor with a dead host exited %d, want 1", code)
	}
	mustContain(t, "monitor of a degraded stage", out, host.Addr+"  release "+rel, "*monsnap-"+rel+"-web-1", "healthy",
		down.Addr+"  unreachable: ", "connection refused",
		"shipit: error: 1 of 2 host(s) unreachable: "+down.Addr, "shipit: hint: ")
	out, code = a.shipit("monitor", "-s", "degraded", "--json")
	if code != 1 {
		t.Fatalf("monitor --json with a dead host exited %d, want 1", code)
	}
	js := out[:strings.LastIndex(out, "}")+1] // the error line follows on stderr
	snap = monitorJSON{}
	if err := json.Unmarshal([]byte(js), &snap); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(snap.Hosts) != 2 || !snap.Hosts[0].Reachable || snap.Hosts[0].CurrentRelease != rel ||
		snap.Hosts[1].Reachable || !strings.Contains(snap.Hosts[1].Error, "connection refused") || snap.Hosts[1].Containers != nil {
		t.Fatalf("degraded snapshot = %+v", snap.Hosts)
	}

	// Without a terminal and without --once/--json there is no dashboard.
	out, code = a.shipit("monitor", "-s", "production")
	if code == 0 {
		t.Fatal("monitor without a terminal succeeded")
	}
	mustContain(t, "monitor without a TTY", out, "needs a terminal", "hint: pass --once", "--json")
}

// tmuxSession drives the dashboard in a real terminal.
type tmuxSession struct {
	t      *testing.T
	sock   string
	name   string
	rcFile string
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) capture() string {
	out, err := s.tmux("capture-pane", "-p", "-t", s.name)
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return out
}

// waitScreen polls the pane until every want is on it.
func (s *tmuxSession) waitScreen(what string, wants ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var screen string
	for time.Now().Before(deadline) {
		screen = s.capture()
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(screen, w)
		}
		if ok {
			return screen
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("%s: screen never showed %q:\n%s", what, wants, screen)
	return ""
}

func startTmux(t *testing.T, a *app, args ...string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed for the dashboard test (apt-get install tmux): %v", err)
	}
	dir := t.TempDir()
	s := &tmuxSession{t: t, sock: filepath.Join(dir, "tmux.sock"), name: "monitor", rcFile: filepath.Join(dir, "rc")}
	full := append([]string{shipitBin, "--known-hosts", a.env.KnownHosts, "-i", a.env.ClientKey, "--ssh-config", a.env.SSHConfig}, args...)
	var q []string
	for _, w := range full {
		q = append(q, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	cmdline := fmt.Sprintf("cd '%s' && env HOME='%s' SSH_AUTH_SOCK= %s; echo $? > '%s'", a.dir, a.home, strings.Join(q, " "), s.rcFile)
	if out, err := s.tmux("-f", "/dev/null", "new-session", "-d", "-s", s.name, "-x", "120", "-y", "40", cmdline); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server") })
	return s
}

// The live dashboard in tmux: it shows the host and release, marks a host
// that drops as unreachable while the other keeps refreshing, picks the
// host up again when it comes back, and q quits and restores the terminal.
func TestMonitorDashboardInTmux(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	flappy := env.StartSSHD(t, harness.SSHDOpts{ListenIP: "127.0.0.4"})
	a, host, rel := monitorApp(t, env, 14, "montui", flappy)

	s := startTmux(t, a, "monitor", "-s", "degraded", "--interval", "500ms", "--timeout", "10s")
	s.waitScreen("first frame", "shipit monitor  montui  stage degraded", "q quits",
		host.Addr+"  release "+rel, "*montui-"+rel+"-web-1", "healthy", "montui-cache", "disk deploy:", flappy.Addr+"  release -")

	// Narrowed to 80 columns, it redraws to fit: short container names.
	if out, err := s.tmux("resize-window", "-t", s.name, "-x", "80", "-y", "40"); err != nil {
		t.Fatalf("tmux resize-window: %v\n%s", err, out)
	}
	narrow := s.waitScreen("80 columns", " *web-1 ", " *worker-1 ", "  cache ", "(accessory)")
	for _, l := range strings.Split(narrow, "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Fatalf("line of %d columns in an 80-column terminal: %q", n, l)
		}
	}

	killSSHD(t, flappy)
	screen := s.waitScreen("host dropped", flappy.Addr+"  unreachable: ", "1 unreachable")
	mustContain(t, "screen with a dropped host", screen, host.Addr+"  release "+rel, "healthy")
	// The dashboard keeps refreshing the live host: its clock moves on.
	clock := func(sc string) string { return strings.Fields(strings.SplitN(sc, "\n", 2)[0])[5] }
	first := clock(screen)
	s.waitScreen("clock moves", "shipit monitor")
	deadline := time.Now().Add(30 * time.Second)
	for clock(s.capture()) == first && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if clock(s.capture()) == first {
		t.Fatalf("dashboard stopped refreshing after a host dropped:\n%s", s.capture())
	}

	// The host comes back on the same address (new host key, trusted).
	back := env.StartSSHD(t, harness.SSHDOpts{ListenIP: flappy.Host, Port: flappy.Port})
	s.waitScreen("host back", back.Addr+"  release -")
	if strings.Contains(s.capture(), "unreachable") {
		t.Fatalf("host still unreachable after it came back:\n%s", s.capture())
	}

	if out, err := s.tmux("send-keys", "-t", s.name, "q"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, out)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, err := s.tmux("has-session", "-t", s.name); err != nil {
			break // the session ended: the program exited
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor did not quit on q:\n%s", s.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}
	rc, err := os.ReadFile(s.rcFile)
	if err != nil || strings.TrimSpace(string(rc)) != "0" {
		t.Fatalf("monitor exit status after q = %q (%v)", rc, err)
	}
}
