package e2e

// Fault injection (issue 12): shipit is interrupted while each step of a
// deploy and of a rollback runs, on a host with the real Traefik and the
// graceful app in an image FROM scratch (issue 16), under a probe that sends requests through Traefik all the
// time. Two ways to interrupt: SIGKILL of shipit (its connection drops with
// it), and a cut network (the sshd process serving shipit's connection is
// killed; shipit lives on). After each interruption, with no command from
// anyone, the host must settle within a bound and meet the invariants of
// DESIGN.md §7; then the next deploy must succeed and meet them too.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// settleBound is how long a host may take to be consistent after losing
// its client: the holder notices at once (end of input), then drains and
// stops the interrupted release.
const settleBound = 60 * time.Second

var deploySteps = []string{"deploy:release", "deploy:push", "deploy:checkout", "deploy:override", "deploy:env", "deploy:build",
	"deploy:start", "deploy:health", "deploy:stop_previous", "deploy:symlink", "deploy:lockfile", "deploy:cleanup"}

var rollbackSteps = []string{"rollback:prepare", "rollback:start", "rollback:health", "rollback:stop_current",
	"rollback:symlink", "rollback:lockfile"}

// faultApp is the graceful app on an isolated host with the real Traefik.
type faultApp struct {
	*routedApp
	appPath string // as the host sees it
	root    string // the host's deploy root on this machine
	version int
}

func newFaultApp(t *testing.T, env *harness.Env, n int, name string) *faultApp {
	return newFaultAppStopping(t, env, n, name, "")
}

// newFaultAppStopping is newFaultApp with [deploy] stop_timeout = stop
// ("": routedToml's).
func newFaultAppStopping(t *testing.T, env *harness.Env, n int, name, stop string) *faultApp {
	t.Helper()
	// The app is FROM scratch: no shell and no probe tool in the image, so
	// every drain and settle here goes through shipit's own probe.
	r := newRoutedAppOf(t, env, n, name, harness.Scratch, func(addr, domain string) string {
		toml := routedToml(name, addr, domain, "")
		if stop != "" {
			toml = strings.Replace(toml, `stop_timeout = "10s"`, "stop_timeout = "+strconv.Quote(stop), 1)
		}
		return toml
	}, nil)
	return &faultApp{routedApp: r, appPath: "/var/deploy/" + name, root: filepath.Join(r.host.DeployRoot, name), version: 1}
}

// next commits the next version, with shipit.lua (may be "").
func (f *faultApp) next(lua string) string {
	f.version++
	v := strconv.Itoa(f.version)
	f.commit(map[string]string{"version.txt": v + "\n", "shipit.lua": lua + "\n"})
	return v
}

// pauseIn is a shipit.lua that stops in step until the test interrupts:
// it marks the moment on the host and sleeps.
func (f *faultApp) pauseIn(step string) string {
	return fmt.Sprintf(`before(%q, function(h) h:run("touch %s/.fault-signal; sleep 600") end)`, step, f.appPath)
}

// start runs shipit in the background.
func (f *faultApp) start(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := f.shipitCmd(args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	return cmd, &out
}

func (f *faultApp) waitSignal(cmd *exec.Cmd, out *bytes.Buffer, what string) {
	f.t.Helper()
	sig := filepath.Join(f.root, ".fault-signal")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(sig); err == nil {
			os.Remove(sig)
			return
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			f.t.Fatalf("%s never reached its pause:\n%s", what, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cutNetwork kills the sshd processes serving connections to the host (the
// listener stays): shipit's connection is gone, shipit is not.
func (f *faultApp) cutNetwork() {
	f.t.Helper()
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(f.host.Pid)).Output()
	pids := strings.Fields(string(out))
	if len(pids) == 0 {
		f.t.Fatal("no sshd connection process to kill: the cut would test nothing")
	}
	for _, p := range pids {
		exec.Command("kill", "-KILL", p).Run()
	}
}

// consistent checks the invariants of DESIGN.md §7 and returns what is
// wrong ("" when none).
func (f *faultApp) consistent() string {
	t := f.t
	link, err := os.Readlink(filepath.Join(f.root, "current"))
	if err != nil {
		return "no current link"
	}
	cur := filepath.Base(link)
	b, err := os.ReadFile(filepath.Join(f.root, "shipit.lock"))
	if err != nil || !strings.Contains(string(b), `"current_release": "`+cur+`"`) {
		return fmt.Sprintf("current -> %s but shipit.lock says %s", cur, b)
	}
	projects := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(f.env.Docker(t, f.host, "ps", "--filter", "label=shipit.app="+f.name,
		"--format", `{{.Label "com.docker.compose.project"}}`)), "\n") {
		if l != "" {
			projects[l] = true
		}
	}
	if len(projects) != 1 || !projects[f.name+"-"+cur] {
		return fmt.Sprintf("running projects %v, want only %s-%s", keys(projects), f.name, cur)
	}
	env, err1 := os.ReadFile(filepath.Join(f.root, "shared", ".env"))
	snap, err2 := os.ReadFile(filepath.Join(f.root, "releases", cur, ".env.snapshot"))
	if err1 != nil || err2 != nil || !bytes.Equal(env, snap) {
		return fmt.Sprintf("shared/.env differs from the current release's snapshot (%v, %v)", err1, err2)
	}
	if fi, err := os.Stat(filepath.Join(f.root, "shared", ".env")); err != nil || fi.Mode().Perm() != 0o600 {
		return fmt.Sprintf("shared/.env mode %v (%v)", fi.Mode().Perm(), err)
	}
	for _, left := range []string{".shipit/journal", ".shipit/env.undo", ".shipit/holder", ".shipit/settle.request"} {
		if _, err := os.Stat(filepath.Join(f.root, left)); err == nil {
			return left + " left behind"
		}
	}
	var tmp []string
	filepath.Walk(f.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(fi.Name(), ".shipit-tmp-") {
			tmp = append(tmp, p)
		}
		if err == nil && fi.IsDir() && fi.Name() == "repo" {
			return filepath.SkipDir
		}
		return nil
	})
	if len(tmp) > 0 {
		return fmt.Sprintf("temp files left: %v", tmp)
	}
	return ""
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitConsistent polls the invariants and returns how long they took.
func (f *faultApp) waitConsistent(what string) time.Duration {
	f.t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < settleBound {
		if why = f.consistent(); why == "" {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(f.root, ".shipit", "settle.log"))
	f.t.Fatalf("%s: not consistent %s after the interruption: %s\nsettle.log:\n%s", what, settleBound, why, log)
	return 0
}

// faultStats collects the figures of the suite.
type faultStats struct {
	mu       sync.Mutex
	tried    int
	survived int
	worst    time.Duration
	worstAt  string
}

func (s *faultStats) add(what string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried++
	s.survived++
	if took > s.worst {
		s.worst, s.worstAt = took, what
	}
}

// interruptAt runs `shipit <args>` with a pause in step, interrupts it the
// given way, and checks that the host settles by itself.
func (f *faultApp) interruptAt(step, mode string, stats *faultStats, args ...string) {
	f.t.Helper()
	what := fmt.Sprintf("%s during %s (%s)", args[0], step, mode)
	cmd, out := f.start(args...)
	f.waitSignal(cmd, out, what)
	switch mode {
	case "kill":
		cmd.Process.Kill()
		cmd.Wait()
	case "cut":
		f.cutNetwork()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				f.t.Fatalf("%s: shipit exited 0 after its connection was cut:\n%s", what, out)
			}
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			f.t.Fatalf("%s: shipit did not give up on a cut connection within 2 minutes:\n%s", what, out)
		}
	}
	took := f.waitConsistent(what)
	f.t.Logf("%s: consistent after %s", what, took.Round(100*time.Millisecond))
	stats.add(what, took)
}

// runFaults interrupts the given way at every step of the deploy (task
// "deploy") or of the rollback (task "rollback").
func runFaults(t *testing.T, n int, mode, task string, stats *faultStats) {
	env := harness.New(t)
	// Settling uses the app's own stop_timeout (the journal carries it):
	// 5s for the apps whose shipit is killed, 60s for those cut off.
	stop := map[string]int{"kill": 5, "cut": 60}[mode]
	f := newFaultAppStopping(t, env, n, "flt"+mode+task[:1], fmt.Sprintf("%ds", stop))
	if task == "rollback" {
		f.next("")
		f.mustShipit("deploy", "-s", "production") // a release to roll back to
	}
	load := harness.StartLoad(t, harness.LoadOpts{URL: f.url, Host: f.domain, Clients: 2, Pause: 50 * time.Millisecond})
	steps := onlySteps(deploySteps)
	if task == "rollback" {
		steps = nil
	}
	for _, step := range steps {
		f.next(f.pauseIn(step))
		f.interruptAt(step, mode, stats, "deploy", "-s", "production")
		v := f.next("")
		f.mustShipit("deploy", "-s", "production")
		if why := f.consistent(); why != "" {
			t.Fatalf("the deploy after an interruption during %s left the host inconsistent: %s", step, why)
		}
		harness.WaitAnswer(t, f.url, f.domain, "version "+v, 10*time.Second)
	}
	if task == "deploy" {
		steps = nil
	} else {
		steps = onlySteps(rollbackSteps)
	}
	for _, step := range steps {
		f.commit(map[string]string{"shipit.lua": f.pauseIn(step) + "\n"})
		f.interruptAt(step, mode, stats, "rollback", "-s", "production")
		v := f.next("")
		f.mustShipit("deploy", "-s", "production")
		if why := f.consistent(); why != "" {
			t.Fatalf("the deploy after an interrupted rollback (%s) left the host inconsistent: %s", step, why)
		}
		harness.WaitAnswer(t, f.url, f.domain, "version "+v, 10*time.Second)
	}
	f.settledWith(stop)
	rep := load.Stop()
	t.Logf("probe through Traefik during %s interruptions: %v", mode, rep)
	if rep.Failed != 0 {
		t.Errorf("the app was not served throughout: %d of %d probe requests failed %v", rep.Failed, rep.Sent, rep.ByKind)
	}
}

// onlySteps keeps the steps SHIPIT_FAULT_STEPS names (comma-separated), to
// rerun part of the suite; all of them without it.
func onlySteps(steps []string) []string {
	only := os.Getenv("SHIPIT_FAULT_STEPS")
	if only == "" {
		return steps
	}
	var out []string
	for _, s := range steps {
		if strings.Contains(","+only+",", ","+s+",") {
			out = append(out, s)
		}
	}
	return out
}

// settledWith checks that every release the host stopped while settling
// alone was stopped with the app's stop_timeout, and that it stopped one.
func (f *faultApp) settledWith(stop int) {
	f.t.Helper()
	b, _ := os.ReadFile(filepath.Join(f.root, ".shipit", "settle.log"))
	stops := regexp.MustCompile(`stopping \S+ \(drain at most \d+s, then Traefik's throttle; stop -t (\d+)\)`).FindAllStringSubmatch(string(b), -1)
	if len(stops) == 0 {
		f.t.Fatalf("the host never stopped a release while settling:\n%s", b)
	}
	for _, m := range stops {
		if m[1] != strconv.Itoa(stop) {
			f.t.Fatalf("the host stopped a release with stop -t %s, not the app's stop_timeout %d:\n%s", m[1], stop, b)
		}
	}
	f.t.Logf("the host stopped %d release(s) while settling, each with stop -t %d", len(stops), stop)
}

func TestFaultInjection(t *testing.T) {
	t.Parallel() // its own isolated hosts
	stats := &faultStats{}
	t.Run("group", func(t *testing.T) {
		t.Run("kill-deploy", func(t *testing.T) { t.Parallel(); runFaults(t, 16, "kill", "deploy", stats) })
		t.Run("cut-deploy", func(t *testing.T) { t.Parallel(); runFaults(t, 17, "cut", "deploy", stats) })
		t.Run("kill-rollback", func(t *testing.T) { t.Parallel(); runFaults(t, 18, "kill", "rollback", stats) })
		t.Run("cut-rollback", func(t *testing.T) { t.Parallel(); runFaults(t, 19, "cut", "rollback", stats) })
	})
	t.Logf("fault injection: %d interruptions tried, %d settled by the host alone; worst %s to consistent (%s)",
		stats.tried, stats.survived, stats.worst.Round(100*time.Millisecond), stats.worstAt)
}
