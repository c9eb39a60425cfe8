package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// `shipit exec -- CMD ARGS...` sends each word quoted: a space or a glob
// in an argument reaches the command as written, over a real sshd.
func TestExecQuotesEachWord(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	a := newApp(t, env, "execq", t.TempDir(), []*harness.SSHD{host}, "", "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x1"), nil, 0o644)
	a.mustShipit("exec", "-s", "production", "--", "touch", filepath.Join(dir, "a b"), filepath.Join(dir, "x*"))
	for _, name := range []string{"a b", "x*"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%q not created: %v", name, err)
		}
	}
	for _, name := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Fatalf("the argument was re-split: %q created", name)
		}
	}
	// A single argument is still a shell line.
	out := a.mustShipit("exec", "-s", "production", "--", "echo one line | tr a-z A-Z")
	mustContain(t, "shell line", out, "ONE LINE")
}

// The reproduction over SSH: a holder file left by a holder that
// died without the lock (a reboot, an OOM kill) names the pid of an
// unrelated process. lock status calls the lock free with a stale holder
// file, and lock release --force removes the file: the process survives.
func TestStaleHolderPidIsNeverSignalled(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	a := newApp(t, env, "stale", deployTo, []*harness.SSHD{host}, "", "")
	sleep := exec.Command("sleep", "120")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	t.Cleanup(func() { sleep.Process.Kill(); <-exited })
	s := filepath.Join(deployTo, "stale", ".shipit")
	os.MkdirAll(s, 0o700)
	os.WriteFile(filepath.Join(s, "lock"), nil, 0o600)
	holder := fmt.Sprintf(`{"user":"ann@laptop","pid":4242,"command":"deploy","since":"2026-01-02T03:04:05Z","holder_pid":%d}`, sleep.Process.Pid)
	os.WriteFile(filepath.Join(s, "holder"), []byte(holder+"\n"), 0o600)

	out := a.mustShipit("lock", "status", "-s", "production")
	mustContain(t, "lock status", out, ": free (a stale holder file names deploy by ann@laptop (pid 4242)")
	out = a.mustShipit("lock", "release", "-s", "production", "--force")
	mustContain(t, "lock release --force", out, "removed a stale holder file", "nothing signalled")
	select {
	case <-exited:
		t.Fatal("lock release --force killed the unrelated process the stale holder file named")
	case <-time.After(time.Second):
	}
	if _, err := os.Stat(filepath.Join(s, "holder")); err == nil {
		t.Fatal("stale holder file left")
	}
	mustContain(t, "lock status after", a.mustShipit("lock", "status", "-s", "production"), ": free")
}

// config set over SSH: shared/ 0700 and config.env 0600 on a fresh host,
// and overlapping config sets all land.
func TestConfigSetPrivateAndSerialized(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	a := newApp(t, env, "cfgset", deployTo, []*harness.SSHD{host}, "", "")
	const n = 4
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.mustShipit("config", "set", "-s", "production", fmt.Sprintf("KEY%d=value %d", i, i))
		}()
	}
	wg.Wait()
	shared := filepath.Join(deployTo, "cfgset", "shared")
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("shared/: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(shared, "config.env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.env: %v %v", fi, err)
	}
	b, _ := os.ReadFile(filepath.Join(shared, "config.env"))
	for i := range n {
		if !strings.Contains(string(b), fmt.Sprintf("KEY%d=", i)) {
			t.Fatalf("KEY%d lost by an overlapping config set:\n%s", i, b)
		}
	}
}
