package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// Ctrl-C while a host is mid-switch (current already moved, lock not yet
// written) puts the host back: current, shipit.lock and the running release
// as before. Meanwhile a second deploy to the same host is refused.
func TestInterruptMidSwitchLeavesHostConsistent(t *testing.T) {
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	a := newApp(t, env, "intr", deployTo, []*harness.SSHD{host}, "", "")
	cleanupApp(t, env, host, "intr")
	appPath := filepath.Join(deployTo, "intr")
	a.mustShipit("deploy", "-s", "production")
	lock1, lockBytes := readLock(t, appPath)
	r1 := lock1.CurrentRelease
	w1 := webContainers(t, env, host, "intr", r1)

	marker := filepath.Join(env.Dir, "switched")
	waitNextSecond(r1)
	a.commit(map[string]string{
		"www/index.html": "version 2\n",
		"shipit.lua":     `after("deploy:symlink", function(h) h:run("touch ` + marker + `; sleep 60") end)`,
	})
	cmd := exec.Command(shipitBin, "--known-hosts", env.KnownHosts, "-i", env.ClientKey, "--ssh-config", env.SSHConfig, "deploy", "-s", "production")
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("deploy never reached the symlink:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link == "releases/"+r1 {
		t.Fatal("current did not move before the interrupt: the test proves nothing")
	}

	// The deploy lock: a second deploy is refused while the first runs.
	out2, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatal("a concurrent deploy to the same host was allowed")
	}
	mustContain(t, "concurrent deploy", out2, "another deploy is running")

	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	t.Logf("interrupted deploy (%s):\n%s", time.Since(start), out.String())
	if err == nil {
		t.Fatal("interrupted deploy exited 0")
	}
	if link, _ := os.Readlink(filepath.Join(appPath, "current")); link != "releases/"+r1 {
		t.Fatalf("after interrupt current -> %s, want releases/%s", link, r1)
	}
	if _, b := readLock(t, appPath); string(b) != string(lockBytes) {
		t.Fatalf("shipit.lock changed:\n%s\n%s", lockBytes, b)
	}
	if rels := releasesOn(t, appPath); len(rels) != 1 || rels[0] != r1 {
		t.Fatalf("releases after interrupt: %v", rels)
	}
	w := webContainers(t, env, host, "intr", r1)
	if len(w) != 1 || serve(t, env, host, w[0]) != "version 1" {
		t.Fatalf("previous release not serving after interrupt (before %v, now %v)", w1, w)
	}
	if n := len(strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=shipit.app=intr"))); n != 2 {
		t.Fatalf("want only the previous release's 2 containers, got %d", n)
	}
	// The lock died with the interrupted shipit: the next deploy proceeds.
	a.commit(map[string]string{"shipit.lua": "-- no hooks\n"})
	waitNextSecond(r1)
	a.mustShipit("deploy", "-s", "production")
}
