package e2e

// Issue 17's proof: shipit frozen (SIGSTOP, its TCP connections left open)
// at a step for longer than the lock holder's timeout, then thawed. The
// host settles without it (undoes, or completes past the point of no
// return); the thawed shipit exits non-zero saying what the host did, and
// nothing it sends after the settle changes the host.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// freezePause is a shipit.lua that marks the moment on the host just
// before step and then keeps shipit in a short remote command (done long
// before the thaw, so nothing of the test itself runs on after it).
func (f *faultApp) freezePause(step string) string {
	return fmt.Sprintf(`before(%q, function(h) h:run("touch %s/.fault-signal; sleep 1") end)`, step, f.appPath)
}

// hostSnapshot is what a thawed shipit must not change.
func (f *faultApp) hostSnapshot() string {
	var b strings.Builder
	link, _ := os.Readlink(filepath.Join(f.root, "current"))
	lock, _ := os.ReadFile(filepath.Join(f.root, "shipit.lock"))
	env, _ := os.ReadFile(filepath.Join(f.root, "shared", ".env"))
	fmt.Fprintf(&b, "current -> %s\nshipit.lock:\n%s\nshared/.env %x\n", link, lock, env)
	ents, _ := os.ReadDir(filepath.Join(f.root, "releases"))
	for _, e := range ents {
		fmt.Fprintf(&b, "release %s\n", e.Name())
		// Files a late step would write into a release.
		for _, n := range []string{".shipit-deployed-at", "REVISION"} {
			if c, err := os.ReadFile(filepath.Join(f.root, "releases", e.Name(), n)); err == nil {
				fmt.Fprintf(&b, "  %s %q\n", n, c)
			}
		}
	}
	for _, n := range []string{"journal", "journal.settling", "env.undo", "holder"} {
		if _, err := os.Stat(filepath.Join(f.root, ".shipit", n)); err == nil {
			fmt.Fprintf(&b, ".shipit/%s present\n", n)
		}
	}
	fmt.Fprintf(&b, "running %s\n", strings.Join(strings.Fields(f.env.Docker(f.t, f.host, "ps", "--filter", "label=shipit.app="+f.name,
		"--format", `{{.Label "com.docker.compose.project"}}/{{.Names}}`)), " "))
	return b.String()
}

// waitSettledWithout waits until the holder gave the frozen run up and the
// host is consistent again.
func (f *faultApp) waitSettledWithout(what string) time.Duration {
	f.t.Helper()
	start := time.Now()
	for time.Since(start) < 15*time.Second+2*settleBound {
		epoch, _ := os.ReadFile(filepath.Join(f.root, ".shipit", "epoch"))
		_, held := os.Stat(filepath.Join(f.root, ".shipit", "holder"))
		if strings.HasPrefix(string(epoch), "settled ") && held != nil && f.consistent() == "" {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(f.root, ".shipit", "settle.log"))
	f.t.Fatalf("%s: the host did not settle the frozen run by itself: %s\nsettle.log:\n%s", what, f.consistent(), log)
	return 0
}

// freezeAt runs `shipit <args>` frozen just before step until the host
// settled it, then thaws it.
func (f *faultApp) freezeAt(step string, stats *faultStats, args ...string) {
	f.t.Helper()
	what := fmt.Sprintf("%s frozen at %s", args[0], step)
	cmd, out := f.start(args...)
	f.waitSignal(cmd, out, what)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		f.t.Fatal(err)
	}
	took := f.waitSettledWithout(what)
	// Stay frozen a little longer: the settle is over, nothing runs.
	time.Sleep(2 * time.Second)
	before := f.hostSnapshot()
	cmd.Process.Signal(syscall.SIGCONT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			f.t.Fatalf("%s: the thawed shipit exited 0:\n%s", what, out)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		f.t.Fatalf("%s: the thawed shipit did not stop within 2 minutes:\n%s", what, out)
	}
	f.t.Logf("%s: host consistent %s after the freeze; thawed shipit said:\n%s", what, took.Round(100*time.Millisecond), out)
	mustContain(f.t, what, out.String(), "the host settled this run without shipit")
	if !strings.Contains(out.String(), "undid the ") && !strings.Contains(out.String(), "completed the ") {
		f.t.Fatalf("%s: the thawed shipit does not say what the host did:\n%s", what, out)
	}
	// Give anything the thawed shipit might still send time to land.
	time.Sleep(2 * time.Second)
	if after := f.hostSnapshot(); after != before {
		f.t.Fatalf("%s: the thawed shipit changed the host after its settle:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
	if why := f.consistent(); why != "" {
		f.t.Fatalf("%s: inconsistent after the thaw: %s", what, why)
	}
	stats.add(what, took)
}

// runFreezes freezes a deploy at each of deploySteps, or a rollback at
// each of rollbackSteps, on isolated host n, under a probe through Traefik.
func runFreezes(t *testing.T, n int, name string, deploySteps, rollbackSteps []string, stats *faultStats) {
	env := harness.New(t)
	f := newFaultApp(t, env, n, name)
	if len(rollbackSteps) > 0 {
		f.next("")
		f.mustShipit("deploy", "-s", "production") // a release to roll back to
	}
	load := harness.StartLoad(t, harness.LoadOpts{URL: f.url, Host: f.domain, Clients: 2, Pause: 50 * time.Millisecond})
	for _, step := range onlySteps(deploySteps) {
		f.next(f.freezePause(step))
		f.freezeAt(step, stats, "deploy", "-s", "production")
		v := f.next("")
		f.mustShipit("deploy", "-s", "production")
		if why := f.consistent(); why != "" {
			t.Fatalf("the deploy after a freeze at %s left the host inconsistent: %s", step, why)
		}
		harness.WaitAnswer(t, f.url, f.domain, "version "+v, 10*time.Second)
	}
	for _, step := range onlySteps(rollbackSteps) {
		f.commit(map[string]string{"shipit.lua": f.freezePause(step) + "\n"})
		f.freezeAt(step, stats, "rollback", "-s", "production")
		v := f.next("")
		f.mustShipit("deploy", "-s", "production")
		if why := f.consistent(); why != "" {
			t.Fatalf("the deploy after a rollback frozen at %s left the host inconsistent: %s", step, why)
		}
		harness.WaitAnswer(t, f.url, f.domain, "version "+v, 10*time.Second)
	}
	rep := load.Stop()
	t.Logf("probe through Traefik during the freezes: %v", rep)
	if rep.Failed != 0 {
		t.Errorf("the app was not served throughout: %d of %d probe requests failed %v", rep.Failed, rep.Sent, rep.ByKind)
	}
}

// Steps 7-11 of a deploy (start .. lockfile) and the steps of a rollback
// that change the host, each on its own isolated host, in parallel.
func TestFreezeThaw(t *testing.T) {
	t.Parallel()
	stats := &faultStats{}
	t.Run("group", func(t *testing.T) {
		t.Run("deploy-a", func(t *testing.T) {
			t.Parallel()
			runFreezes(t, 27, "frza", []string{"deploy:start", "deploy:health", "deploy:stop_previous"}, nil, stats)
		})
		t.Run("deploy-b", func(t *testing.T) {
			t.Parallel()
			runFreezes(t, 28, "frzb", []string{"deploy:symlink", "deploy:lockfile"}, nil, stats)
		})
		t.Run("rollback", func(t *testing.T) {
			t.Parallel()
			runFreezes(t, 19, "frzr", nil, rollbackSteps[1:], stats)
		})
	})
	t.Logf("freeze/thaw: %d freezes, each settled by the host alone; worst %s from the freeze to consistent (%s)",
		stats.tried, stats.worst.Round(100*time.Millisecond), stats.worstAt)
}
