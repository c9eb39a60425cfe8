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

// A compose file whose name holds a space and a glob character: deployed,
// its previous release stopped by the next deploy, and an interrupted
// deploy undone by the host itself (host.sh), each with the file as
// named. A decoy the glob would match is committed too.
func TestComposeFileNameWithSpaceAndGlob(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	const name = "cfname"
	a := newApp(t, env, name, deployTo, []*harness.SSHD{host}, "", `compose_file = "my app*.yml"`+"\n")
	cleanupApp(t, env, host, name)
	files := appFiles("1")
	a.commit(map[string]string{"my app*.yml": files["docker-compose.yml"], "my app-decoy.yml": "this is not yaml: [\n"})
	appPath := filepath.Join(deployTo, name)
	a.mustShipit("deploy", "-s", "production")
	l1, _ := readLock(t, appPath)
	desc, _ := os.ReadFile(filepath.Join(appPath, "releases", l1.CurrentRelease, ".shipit-compose"))
	if want := name + "-" + l1.CurrentRelease + "\nmy app*.yml\ndocker-compose.override.yml\n"; string(desc) != want {
		t.Fatalf(".shipit-compose = %q, want %q", desc, want)
	}

	// The next deploy stops the first release (shipit's own stop_release).
	waitNextSecond(l1.CurrentRelease)
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	a.mustShipit("deploy", "-s", "production")
	l2, _ := readLock(t, appPath)
	if l2.CurrentRelease == l1.CurrentRelease {
		t.Fatal("second deploy did not switch")
	}
	if n := len(strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=com.docker.compose.project="+name+"-"+l1.CurrentRelease))); n != 0 {
		t.Fatalf("the first release still has %d containers", n)
	}

	// A deploy whose holder is killed after deploy:start: recover (the
	// host's settle) brings the new release down with its files.
	waitNextSecond(l2.CurrentRelease)
	cmd, out := pausedDeploy(t, a, "after", "deploy:start", 60)
	holder, err := os.ReadFile(filepath.Join(appPath, ".shipit", "holder"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSuffix(strings.SplitN(strings.SplitN(string(holder), `"holder_pid":`, 2)[1], "}", 2)[0], "\n")
	env.HostRun(t, host, "kill -KILL "+pid)
	cmd.Wait()
	t.Logf("interrupted deploy:\n%s", out)
	journal, err := os.ReadFile(filepath.Join(appPath, ".shipit", "journal"))
	if err != nil || !strings.Contains(string(journal), "\nS_release=") {
		t.Fatalf("no journal left by the killed holder (the test proves nothing): %v", err)
	}
	r3 := strings.Trim(strings.SplitN(strings.SplitN(string(journal), "\nS_release=", 2)[1], "\n", 2)[0], "'")
	if images := env.Docker(t, host, "images", "--format", "{{.Repository}}"); !strings.Contains(images, r3) {
		t.Fatalf("no image of the interrupted release %s before recover (the test proves nothing):\n%s", r3, images)
	}
	mustContain(t, "recover", a.mustShipit("recover", "-s", "production"), "undoing the deploy of")
	if n := len(strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=shipit.app="+name))); n != 2 {
		t.Fatalf("want only the current release's 2 containers after recover, got %d", n)
	}
	// Brought down by compose with its files (down --rmi local removes the
	// image it built), not by the fallback that removes containers by label.
	if images := env.Docker(t, host, "images", "--format", "{{.Repository}}"); strings.Contains(images, r3) {
		t.Fatalf("the interrupted release's image is left: compose did not bring it down with its files:\n%s", images)
	}
	if b, _ := os.ReadFile(filepath.Join(appPath, ".shipit", "settle.log")); strings.Contains(string(b), "corrupt") {
		t.Fatalf("settle.log: %s", b)
	}
}
