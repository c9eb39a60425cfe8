package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pausedDeploy starts `shipit deploy` with a pause at a step (a hook,
// when = "before" or "after" it, that sleeps for secs), and returns once
// the pause is reached.
func pausedDeploy(t *testing.T, a *app, when, step string, secs int) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	signal := filepath.Join(a.env.Dir, "paused-"+a.name)
	a.commit(map[string]string{"shipit.lua": fmt.Sprintf("%s(%q, function(h) h:run(%q) end)\n", when, step, fmt.Sprintf("touch %s; sleep %d", signal, secs))})
	return startPaused(t, a, signal)
}

// Ctrl-C before the point of no return (during the health check) undoes
// the deploy, and the lock is held until the undo has finished; Ctrl-C
// after it (during the symlink) completes the switch. Either way current,
// shipit.lock and the running release agree.
func TestInterruptBeforeAndAfterThePointOfNoReturn(t *testing.T) {
	t.Parallel()
	env, host, a, deployTo := newLocalApp(t, "intr")
	appPath := filepath.Join(deployTo, "intr")
	a.mustShipit("deploy", "-s", "production")
	lock1, lockBytes := readLock(t, appPath)
	r1 := lock1.CurrentRelease

	// 1. During deploy:health: undone.
	waitNextSecond(r1)
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	cmd, out := pausedDeploy(t, a, "after", "deploy:start", 60)
	cmd.Process.Signal(os.Interrupt)
	// While the host undoes, the lock is still held.
	time.Sleep(300 * time.Millisecond)
	st := a.mustShipit("lock", "status", "-s", "production")
	mustContain(t, "lock status during the undo", st, "held: deploy by")
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted deploy exited 0:\n%s", out)
	}
	t.Logf("interrupted deploy:\n%s", out)
	mustContain(t, "interrupted deploy", out.String(), "undoing the deploy of", "undone")
	mustContain(t, "lock status after", a.mustShipit("lock", "status", "-s", "production"), ": free")
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link != "releases/"+r1 {
		t.Fatalf("after the interrupt current -> %s, want releases/%s", link, r1)
	}
	if _, b := readLock(t, appPath); string(b) != string(lockBytes) {
		t.Fatalf("shipit.lock changed:\n%s\n%s", lockBytes, b)
	}
	if rels := releasesOn(t, appPath); len(rels) != 1 || rels[0] != r1 {
		t.Fatalf("releases after the interrupt: %v", rels)
	}
	w := webContainers(t, env, host, "intr", r1)
	if len(w) != 1 || serve(t, env, host, w[0]) != "version 1" {
		t.Fatalf("previous release not serving after the interrupt: %v", w)
	}

	// 2. During deploy:symlink (past the point of no return): completed.
	waitNextSecond(r1)
	cmd, out = pausedDeploy(t, a, "before", "deploy:symlink", 60)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted deploy exited 0:\n%s", out)
	}
	mustContain(t, "interrupted switch", out.String(), "completing the deploy of")
	l2, _ := readLock(t, appPath)
	link, _ := os.Readlink(filepath.Join(appPath, "current"))
	if l2.CurrentRelease == r1 || link != "releases/"+l2.CurrentRelease || l2.PreviousRelease != r1 {
		t.Fatalf("after completing: current -> %s, lock %+v (was %s)", link, l2, r1)
	}
	if w := webContainers(t, env, host, "intr", r1); len(w) != 0 {
		t.Fatalf("the previous release still runs after the switch was completed: %v", w)
	}
	if w := webContainers(t, env, host, "intr", l2.CurrentRelease); len(w) != 1 || serve(t, env, host, w[0]) != "version 2" {
		t.Fatalf("new release not serving: %v", w)
	}

	// 3. Killed during deploy:start, and deployed again at once, without
	// --lock-wait: the new deploy waits for the host to settle the
	// interrupted one, then succeeds.
	waitNextSecond(l2.CurrentRelease)
	cmd, _ = pausedDeploy(t, a, "after", "deploy:start", 60)
	cmd.Process.Kill()
	cmd.Wait()
	a.commit(map[string]string{"shipit.lua": "-- no hooks\n"})
	retry := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "deploy right after a killed one", retry, "waiting for the host to settle")
	l3, _ := readLock(t, appPath)
	if l3.PreviousRelease != l2.CurrentRelease {
		t.Fatalf("after the retry: lock %+v, want previous %s", l3, l2.CurrentRelease)
	}
	if rels := releasesOn(t, appPath); len(rels) != 2 {
		t.Fatalf("releases after the retry: %v (the killed one should be gone)", rels)
	}
}

// Two deploys at once: one proceeds and the other names the holder; with
// --lock-wait the second queues and both succeed in turn. `lock release`
// refuses a live holder without --force.
func TestConcurrentDeploysAndLockWait(t *testing.T) {
	t.Parallel()
	_, _, a, deployTo := newLocalApp(t, "conc")
	a.mustShipit("deploy", "-s", "production")

	cmd, out := pausedDeploy(t, a, "before", "deploy:build", 5)
	out2, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatal("a concurrent deploy to the same host was allowed")
	}
	mustContain(t, "concurrent deploy", out2, "locked: deploy by", "shipit: hint:", "--lock-wait")
	out3, code := a.shipit("lock", "release", "-s", "production")
	if code == 0 {
		t.Fatal("lock release without --force released a live holder")
	}
	mustContain(t, "lock release", out3, "held by a live shipit", "--force ends it")
	// Queued behind the first: waits, then deploys.
	out4 := a.mustShipit("deploy", "-s", "production", "--lock-wait", "2m")
	mustContain(t, "queued deploy", out4, "waiting up to 2m0s for the lock: deploy by")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("first deploy failed: %v\n%s", err, out)
	}
	appPath := filepath.Join(deployTo, "conc")
	if rels := releasesOn(t, appPath); len(rels) != 2 {
		t.Fatalf("releases after two deploys in turn: %v", rels)
	}
}

// The remote lock holder killed (as by a host reboot) while a deploy runs:
// shipit stops (it lost the lock), and the next command settles the journal
// left on the host before doing anything.
func TestKilledHolderIsSettledByTheNextCommand(t *testing.T) {
	t.Parallel()
	env, host, a, deployTo := newLocalApp(t, "reboot")
	appPath := filepath.Join(deployTo, "reboot")
	a.mustShipit("deploy", "-s", "production")
	lock1, _ := readLock(t, appPath)
	waitNextSecond(lock1.CurrentRelease)
	cmd, out := pausedDeploy(t, a, "after", "deploy:start", 60)
	holder, err := os.ReadFile(filepath.Join(appPath, ".shipit", "holder"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSuffix(strings.SplitN(strings.SplitN(string(holder), `"holder_pid":`, 2)[1], "}", 2)[0], "\n")
	env.HostRun(t, host, "kill -KILL "+pid)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("deploy went on after its lock holder was killed:\n%s", out)
	}
	mustContain(t, "deploy without its holder", out.String(), "lost the deploy lock")
	if _, err := os.Stat(filepath.Join(appPath, ".shipit", "journal")); err != nil {
		t.Fatalf("no journal left by the killed holder (the test proves nothing): %v", err)
	}
	out2 := a.mustShipit("recover", "-s", "production")
	mustContain(t, "recover", out2, "undoing the deploy of")
	if _, err := os.Stat(filepath.Join(appPath, ".shipit", "journal")); err == nil {
		t.Fatal("journal still there after recover")
	}
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link != "releases/"+lock1.CurrentRelease {
		t.Fatalf("current -> %s after recover, want releases/%s", link, lock1.CurrentRelease)
	}
	if rels := releasesOn(t, appPath); len(rels) != 1 {
		t.Fatalf("releases after recover: %v", rels)
	}
	if n := len(strings.Fields(env.Docker(t, host, "ps", "-q", "--filter", "label=shipit.app=reboot"))); n != 2 {
		t.Fatalf("want only the current release's 2 containers, got %d", n)
	}
	a.commit(map[string]string{"shipit.lua": "-- no hooks\n"})
	a.mustShipit("deploy", "-s", "production")
}

// `lock release --force` ends a live holder: the host settles the run it
// held (here: undone, before its point of no return), the shipit that held
// it fails naming the lost lock, and the lock is free.
func TestLockReleaseForce(t *testing.T) {
	t.Parallel()
	_, _, a, deployTo := newLocalApp(t, "force")
	appPath := filepath.Join(deployTo, "force")
	a.mustShipit("deploy", "-s", "production")
	lock1, _ := readLock(t, appPath)
	waitNextSecond(lock1.CurrentRelease)
	cmd, out := pausedDeploy(t, a, "after", "deploy:start", 60)
	rel := a.mustShipit("lock", "release", "-s", "production", "--force")
	mustContain(t, "lock release --force", rel, "released (the host settled the run it held)")
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the deploy whose lock was forced away exited 0:\n%s", out)
	}
	mustContain(t, "forced-away deploy", out.String(), "lost the deploy lock")
	mustContain(t, "lock status", a.mustShipit("lock", "status", "-s", "production"), ": free")
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link != "releases/"+lock1.CurrentRelease {
		t.Fatalf("current -> %s after the forced release, want releases/%s", link, lock1.CurrentRelease)
	}
	if rels := releasesOn(t, appPath); len(rels) != 1 {
		t.Fatalf("releases after the forced release: %v", rels)
	}
	audit := a.mustShipit("audit", "-s", "production")
	mustContain(t, "audit", audit, "lock-release")
}
