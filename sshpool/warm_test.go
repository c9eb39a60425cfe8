package sshpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// warmClient returns a pooled Client whose warm shell is running (the first
// Run on a Client never starts one).
func warmClient(t *testing.T, e *env, mod func(*Config)) *Client {
	t.Helper()
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	c, err := e.pool(mod).Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, "true", "")
	run(t, c, "true", "")
	if warmOf(c) == nil {
		t.Fatal("no warm shell after two Runs")
	}
	return c
}

func warmOf(c *Client) *warmShell {
	c.warmMu.Lock()
	defer c.warmMu.Unlock()
	return c.warm
}

func warmSent(c *Client) int {
	c.warmMu.Lock()
	defer c.warmMu.Unlock()
	return c.warmSent
}

// inWarm runs cmd and checks it ran in the warm shell w.
func inWarm(t *testing.T, c *Client, w *warmShell, cmd string) (int, string, string) {
	t.Helper()
	sent := warmSent(c)
	code, out, errs := run(t, c, cmd, "")
	if warmSent(c) != sent+1 || warmOf(c) != w {
		t.Fatalf("%q did not run in the warm shell", cmd)
	}
	return code, out, errs
}

// The warm shell gives what a session of its own gives: exit codes, separate
// and exact stdout and stderr, any bytes, multi-line commands with quotes.
func TestWarmShellMatchesSessions(t *testing.T) {
	bothWays(t, testWarmShellMatchesSessions)
}

// bothWays runs test with the commands run by setsid -w and, as on hosts
// without it, eval'd by the server's subshell.
func bothWays(t *testing.T, test func(t *testing.T, setsid bool)) {
	t.Run("setsid", func(t *testing.T) { test(t, true) })
	t.Run("eval", func(t *testing.T) {
		probe := warmProbe
		warmProbe = "false"
		t.Cleanup(func() { warmProbe = probe })
		test(t, false)
	})
}

func testWarmShellMatchesSessions(t *testing.T, setsid bool) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	for _, tc := range []struct {
		name, cmd      string
		code           int
		stdout, stderr string
	}{
		{"true", "true", 0, "", ""},
		{"false", "false", 1, "", ""},
		{"42", "sh -c 'exit 42'", 42, "", ""},
		{"exit", "echo before; exit 3; echo after", 3, "before\n", ""},
		{"no trailing newline", "printf out; printf err >&2", 0, "out", "err"},
		{"marker-like", `printf '@shipit-%s=0\n@shipit-' 0123456789abcdef0123456789abcdef; printf '@shipit-=1\n' >&2`, 0,
			"@shipit-0123456789abcdef0123456789abcdef=0\n@shipit-", "@shipit-=1\n"},
		{"binary", `printf '\000\001\377\036@\n\r'`, 0, "\x00\x01\xff\x1e@\n\r", ""},
		{"multi-line quotes", "a='it'\\''s \"q\"'\nprintf '%s|%s\\n' \"$a\" \\\\back\n\tprintf 'tab\\there\\n' >&2\nexit 5", 5,
			"it's \"q\"|\\back\n", "tab\there\n"},
		{"trailing backslash-newline", "echo a \\\n", 0, "a\n", ""},
		{"syntax error", "if then", 2, "", ""},
		{"utf-8 and percent", "echo 'héllo %s %% \\n'", 0, "héllo %s %% \\n\n", ""},
		{"environment", "echo \"$PATH $SHELL $HOME $USER $SSH_CONNECTION\"; umask; pwd", -1, "", ""},
		{"killed by a signal", "echo x; kill -TERM $$", 143, "x\n", ""},
		{"background job", "sleep 0 & echo bg", 0, "bg\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !setsid && strings.Contains(tc.cmd, "$$") {
				t.Skip("an eval'd command's $$ is the server's")
			}
			code, out, errs := inWarm(t, c, w, tc.cmd)
			if tc.code == -1 { // only compared with a session's
			} else if tc.name == "syntax error" {
				if code == 0 || errs == "" {
					t.Fatalf("syntax error: code %d, stderr %q", code, errs)
				}
			} else if code != tc.code || out != tc.stdout || errs != tc.stderr {
				t.Fatalf("warm: code=%d stdout=%q stderr=%q; want %d %q %q", code, out, errs, tc.code, tc.stdout, tc.stderr)
			}
			var sout, serr bytes.Buffer
			scode, err := c.runSession(context.Background(), tc.cmd, nil, &sout, &serr)
			if err != nil || scode != code || sout.String() != out || (tc.name != "syntax error" && serr.String() != errs) {
				t.Fatalf("session gives code=%d stdout=%q stderr=%q (%v); warm %d %q %q", scode, sout.String(), serr.String(), err, code, out, errs)
			}
		})
	}
	if warmOf(c) != w {
		t.Fatal("the warm shell was replaced")
	}
}

func TestWarmShellLargeOutput(t *testing.T) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	const n = 1500000
	code, out, errs := inWarm(t, c, w, fmt.Sprintf("yes abcdefgh | head -c %d; yes x | head -c %d >&2", n, n+1))
	want := strings.Repeat("abcdefgh\n", n/9+1)[:n]
	if code != 0 || out != want || errs != strings.Repeat("x\n", n)[:n+1] {
		t.Fatalf("code %d, %d stdout bytes (equal %v), %d stderr bytes", code, len(out), out == want, len(errs))
	}
}

// Each command runs in its own subshell: cd, exports and exit end with it.
func TestWarmShellIsolatesCommands(t *testing.T) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	_, home, _ := inWarm(t, c, w, "pwd")
	inWarm(t, c, w, "cd /tmp && export SHIPIT_WARM_X=1 && pwd")
	if _, out, _ := inWarm(t, c, w, "pwd; echo ${SHIPIT_WARM_X-unset}"); out != home+"unset\n" {
		t.Fatalf("state leaked: %q (home %q)", out, home)
	}
	if code, _, _ := inWarm(t, c, w, "exit 9"); code != 9 {
		t.Fatalf("exit 9 -> %d", code)
	}
	if code, _, _ := inWarm(t, c, w, "cat; echo done"); code != 0 {
		t.Fatal("a command read stdin past its own")
	}
}

// Concurrent Runs share one Client: one gets the warm shell, the others
// sessions; every one gets its own output and code.
func TestWarmShellConcurrentRuns(t *testing.T) {
	e := newEnv(t, "")
	c := warmClient(t, e, func(c *Config) { c.MaxSessions = 4 })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var out, serr bytes.Buffer
			code, err := c.Run(context.Background(), fmt.Sprintf("echo o%d; echo e%d >&2; exit %d", i, i, i%7), nil, &out, &serr)
			// A session's stderr may start with the login shell's own noise.
			if err != nil || code != i%7 || out.String() != fmt.Sprintf("o%d\n", i) || !strings.HasSuffix("\n"+serr.String(), fmt.Sprintf("\ne%d\n", i)) {
				errs <- fmt.Errorf("run %d: code=%d out=%q err=%q %v", i, code, out.String(), serr.String(), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(c.sem) != 1 {
		t.Fatalf("%d semaphore slots held after the Runs, want the warm shell's 1", len(c.sem))
	}
}

// Stdin needs a session of its own; the warm shell stays.
func TestWarmShellStdinUsesASession(t *testing.T) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	sent := warmSent(c)
	if code, out, _ := run(t, c, "tr a-z A-Z", "piped"); code != 0 || out != "PIPED" || warmSent(c) != sent {
		t.Fatalf("stdin: code=%d out=%q", code, out)
	}
	if warmOf(c) != w {
		t.Fatal("the warm shell was replaced")
	}
}

func pgrep(t *testing.T, pattern string) bool {
	t.Helper()
	err := exec.Command("pgrep", "-f", pattern).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return true
}

// A cancelled command is killed on the host, not left running, and the next
// Run gets a new warm shell.
func TestWarmShellCancelKillsTheCommand(t *testing.T) {
	bothWays(t, testWarmShellCancelKillsTheCommand)
}

func testWarmShellCancelKillsTheCommand(t *testing.T, setsid bool) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	// A job an earlier command left behind is not the cancelled command's
	// (eval'd commands all share the server's process group).
	inWarm(t, c, w, "nohup sleep 3132 >/dev/null 2>&1 &")
	t.Cleanup(func() { exec.Command("pkill", "-f", "sleep 3132").Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	sent := warmSent(c)
	start := time.Now()
	_, err := c.Run(ctx, "echo started; sleep 3131; echo never", nil, &out, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if out.String() != "started\n" || warmSent(c) != sent+1 {
		t.Fatalf("output %q: the command did not run in the warm shell", out.String())
	}
	if pgrep(t, "sleep 3131") {
		t.Fatal("the cancelled command still runs on the host")
	}
	if setsid && !pgrep(t, "sleep 3132") {
		t.Fatal("the cancel killed an earlier command's background job")
	}
	if warmOf(c) == w {
		t.Fatal("the cancelled warm shell is still in use")
	}
	if code, _, _ := run(t, c, "true", ""); code != 0 {
		t.Fatal("connection broken after cancel")
	}
	if nw := warmOf(c); nw == nil || nw == w {
		t.Fatal("no new warm shell after cancel")
	}
	if len(c.sem) != 1 {
		t.Fatalf("%d semaphore slots held, want 1", len(c.sem))
	}
}

// A warm shell killed from outside is replaced; no command runs twice.
func TestWarmShellKilledFromOutside(t *testing.T) {
	e := newEnv(t, "")
	c := warmClient(t, e, nil)
	w := warmOf(c)
	if err := syscall.Kill(w.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "count")
	if code, _, _ := run(t, c, "echo x >> "+f, ""); code != 0 {
		t.Fatal("run after the kill failed")
	}
	if b, _ := os.ReadFile(f); string(b) != "x\n" {
		t.Fatalf("the command ran %d times", strings.Count(string(b), "x"))
	}
	run(t, c, "true", "") // starts a new one unless the last did
	nw := warmOf(c)
	if nw == nil {
		t.Fatal("no new warm shell")
	}
	if code, out, _ := inWarm(t, c, nw, "echo again"); code != 0 || out != "again\n" || nw == w {
		t.Fatalf("no new warm shell: %d %q", code, out)
	}
	if len(c.sem) != 1 {
		t.Fatalf("%d semaphore slots held, want 1", len(c.sem))
	}
}

func TestWarmShellOff(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	t.Run("env", func(t *testing.T) {
		t.Setenv(WarmEnv, "0")
		c, err := e.pool(nil).Get(context.Background(), e.target())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			run(t, c, "true", "")
		}
		if warmOf(c) != nil {
			t.Fatalf("%s=0 started a warm shell", WarmEnv)
		}
	})
	t.Run("one session", func(t *testing.T) {
		c, err := e.pool(func(c *Config) { c.MaxSessions = 1 }).Get(context.Background(), e.target())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			run(t, c, "true", "")
		}
		if warmOf(c) != nil {
			t.Fatal("MaxSessions 1 started a warm shell")
		}
	})
	t.Run("separate", func(t *testing.T) {
		c, err := e.pool(nil).Get(context.Background(), e.target())
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Separate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := 0; i < 3; i++ {
			run(t, s, "true", "")
		}
		if warmOf(s) != nil {
			t.Fatal("a Separate connection started a warm shell")
		}
	})
}

// Without WarmFirst a Client's first command gets a session of its own (one
// command, as shipit exec runs, pays no loop start-up); with it, the first
// command, issued while Get's prewarm still starts the shell, waits for it
// and runs there (a deploy's many commands then cost one login shell).
func TestWarmShellFirstCommand(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	for _, first := range []bool{false, true} {
		c, err := e.pool(func(c *Config) { c.WarmFirst = first }).Get(context.Background(), e.target())
		if err != nil {
			t.Fatal(err)
		}
		if code, out, _ := run(t, c, "echo one", ""); code != 0 || out != "one\n" {
			t.Fatalf("WarmFirst %v: first command: %d %q", first, code, out)
		}
		want := 0
		if first {
			want = 1
		}
		if got := warmSent(c); got != want {
			t.Fatalf("WarmFirst %v: %d commands went to a warm shell after the first, want %d", first, got, want)
		}
		c.Close()
	}
}

// With WarmFirst, Get starts the warm shell and the SFTP subsystem before
// any command, so their start-ups overlap what the caller does next (that
// a command issued meanwhile waits for the shell: TestWarmShellFirstCommand).
func TestWarmFirstPrewarms(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	c, err := e.pool(func(c *Config) { c.WarmFirst = true }).Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for warmOf(c) == nil || !hasSFTP(c) {
		if time.Now().After(deadline) {
			t.Fatalf("no command ran, and after 10 s: warm shell %v, sftp %v", warmOf(c) != nil, hasSFTP(c))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := warmSent(c); got != 0 {
		t.Fatalf("%d commands sent by the prewarm itself", got)
	}
}

func hasSFTP(c *Client) bool {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	return c.sftp != nil
}
