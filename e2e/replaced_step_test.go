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

	"github.com/shipit-dev/shipit/e2e/harness"
)

// replacedLua replaces two lifecycle steps in shipit.lua: deploy:symlink
// switches with commands of its own (not shipit.lifecycle), and
// deploy:stop_previous stops through shipit.lifecycle after a pause. When
// the file SIGNAL's directory holds "pause-STEP", the step touches SIGNAL
// and sleeps first: the test kills shipit there.
const replacedLua = `
local lifecycle = require("shipit.lifecycle")
local compose = require("shipit.compose")
local function pause(h, step)
  h:run("if [ -e %DIR%/pause-" .. step .. " ]; then touch %DIR%/paused; sleep 60; fi")
end
task("deploy:stop_previous", function(h)
  pause(h, "stop")
  local prev = h.previous_release
  if prev == "" then return end
  local dir = h.releases_path .. "/" .. prev
  lifecycle.stop(h, { project = compose.release(h, prev).project, dir = dir })
  print("replaced stop_previous stopped " .. prev)
end)
task("deploy:symlink", function(h)
  pause(h, "symlink")
  h:run("ln -sfn releases/" .. h.release .. " " .. h.app_path .. "/current.new && mv -Tf " ..
        h.app_path .. "/current.new " .. h.app_path .. "/current")
  print("replaced symlink switched to " .. h.release)
end)
`

// A shipit.lua that replaces lifecycle steps deploys as the built-in
// recipe does, and a shipit killed inside a replaced step leaves a host
// that settles by itself as DESIGN.md §7 asks: the marks are written before
// the step's body runs, and the holder completes the run past the point of
// no return with the built-in lifecycle, whatever the replacement did.
func TestReplacedLifecycleStepsKeepTheContract(t *testing.T) {
	t.Parallel()
	env, host, a, deployTo := newLocalApp(t, "repl")
	appPath := filepath.Join(deployTo, "repl")
	ctl := t.TempDir()
	lua := strings.ReplaceAll(replacedLua, "%DIR%", ctl)
	a.commit(map[string]string{"shipit.lua": lua})
	out := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "first deploy", out, "replaced symlink switched to")
	l1, _ := readLock(t, appPath)
	consistent(t, env, host, a, appPath, l1.CurrentRelease, "version 1")

	// The second deploy runs both replacements end to end.
	waitNextSecond(l1.CurrentRelease)
	a.commit(map[string]string{"www/index.html": "version 2\n"})
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "second deploy", out, "replaced stop_previous stopped "+l1.CurrentRelease, "replaced symlink switched to")
	l2, _ := readLock(t, appPath)
	if l2.PreviousRelease != l1.CurrentRelease {
		t.Fatalf("lock after the second deploy: %+v", l2)
	}
	consistent(t, env, host, a, appPath, l2.CurrentRelease, "version 2")

	// Killed in each replaced step, past the point of no return: the host
	// completes the switch on its own.
	prev, version := l2.CurrentRelease, 2
	for _, step := range []string{"stop", "symlink"} {
		version++
		waitNextSecond(prev)
		a.commit(map[string]string{"www/index.html": fmt.Sprintf("version %d\n", version)})
		if err := os.WriteFile(filepath.Join(ctl, "pause-"+step), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd, buf := startPaused(t, a, filepath.Join(ctl, "paused"))
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(filepath.Join(ctl, "pause-"+step))
		waitFree(t, a, buf)
		l, _ := readLock(t, appPath)
		if l.CurrentRelease == prev || l.PreviousRelease != prev {
			t.Fatalf("killed in replaced %s: lock %+v, want a new current after %s", step, l, prev)
		}
		consistent(t, env, host, a, appPath, l.CurrentRelease, fmt.Sprintf("version %d", version))
		if w := webContainers(t, env, host, "repl", prev); len(w) != 0 {
			t.Fatalf("killed in replaced %s: the previous release %s still runs: %v", step, prev, w)
		}
		settled, _ := os.ReadFile(filepath.Join(appPath, ".shipit", "settle.log"))
		mustContain(t, "settle.log", string(settled), "completing the deploy of "+l.CurrentRelease, "deploy of "+l.CurrentRelease+" completed")
		prev = l.CurrentRelease
	}
	// And the next deploy succeeds.
	waitNextSecond(prev)
	a.commit(map[string]string{"www/index.html": "version 9\n"})
	a.mustShipit("deploy", "-s", "production")
	l, _ := readLock(t, appPath)
	consistent(t, env, host, a, appPath, l.CurrentRelease, "version 9")
}

// startPaused starts a deploy and returns once it touched signal.
func startPaused(t *testing.T, a *app, signal string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := a.shipitCmd("deploy", "-s", "production")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(signal); err == nil {
			os.Remove(signal)
			return cmd, &out
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("deploy never reached its pause:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFree waits until the host's lock is free: the holder settled.
func waitFree(t *testing.T, a *app, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, _ := a.shipit("lock", "status", "-s", "production")
		if strings.Contains(st, ": free") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host never settled: %s\nkilled deploy:\n%s", st, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// consistent checks DESIGN.md §7 on the host: current and shipit.lock name
// release, and it is the one release of the app that runs, serving want.
func consistent(t *testing.T, env *harness.Env, host *harness.SSHD, a *app, appPath, release, want string) {
	t.Helper()
	l, _ := readLock(t, appPath)
	link, _ := os.Readlink(filepath.Join(appPath, "current"))
	if l.CurrentRelease != release || link != "releases/"+release {
		t.Fatalf("current -> %s, lock %+v, want %s", link, l, release)
	}
	w := webContainers(t, env, host, a.name, release)
	if len(w) != 1 || serve(t, env, host, w[0]) != want {
		t.Fatalf("release %s: web containers %v, want one serving %q", release, w, want)
	}
	for _, r := range strings.Fields(env.Docker(t, host, "ps", "--filter", "label=shipit.app="+a.name, "--format", `{{.Label "shipit.release"}}`)) {
		if r != release {
			t.Fatalf("a container of release %s runs next to current %s", r, release)
		}
	}
}
