package hostlock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// The holder runs here under the local sh (dash on Debian, like a host's
// /bin/sh) with a fake docker that records its calls; the end-to-end tests
// run it on real sshd and Docker.

type fixture struct {
	t      *testing.T
	app    string
	conn   *localconn.Conn
	docker string // the fake docker's log
	mu     sync.Mutex
	logs   []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	app := filepath.Join(dir, "app")
	for _, d := range []string{bin, filepath.Join(app, "releases", "r1"), filepath.Join(app, "releases", "r2"), filepath.Join(app, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{t: t, app: app, docker: filepath.Join(dir, "docker.log")}
	// docker ps answers nothing running; everything else succeeds.
	shim := "#!/bin/sh\necho \"$*\" >> " + f.docker + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	f.conn = &localconn.Conn{HostName: "h1", Dir: dir, Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}}
	return f
}

func (f *fixture) opts(cmd string) Options {
	return Options{AppPath: f.app, App: "demo", Stage: "prod", HeartbeatTimeout: 3 * time.Second,
		Holder: Holder{User: "dev@laptop", PID: 42, Command: cmd, Release: "r2", Since: time.Now()},
		Logf: func(s string) {
			f.mu.Lock()
			f.logs = append(f.logs, s)
			f.mu.Unlock()
		}}
}

func (f *fixture) acquire(o Options) *Lock {
	f.t.Helper()
	l, err := Acquire(context.Background(), f.conn, o)
	if err != nil {
		f.t.Fatalf("Acquire: %v", err)
	}
	return l
}

func (f *fixture) dockerCalls() string {
	b, _ := os.ReadFile(f.docker)
	return string(b)
}

func (f *fixture) status() Status {
	f.t.Helper()
	st, err := ReadStatus(context.Background(), f.conn, f.app)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) waitFree(within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !f.status().Held {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("lock still held after %s", within)
}

func (f *fixture) logText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.logs, "\n")
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestLockIsExclusiveAndNamesItsHolder(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	st := f.status()
	if !st.Held || st.Holder.Command != "deploy" || st.Holder.User != "dev@laptop" || st.Holder.HolderPID == 0 {
		t.Fatalf("status = %+v", st)
	}
	_, err := Acquire(context.Background(), f.conn, f.opts("rollback"))
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Holder.Command != "deploy" || !strings.Contains(err.Error(), "dev@laptop") {
		t.Fatalf("second Acquire: %v", err)
	}
	// With --lock-wait the second one queues and gets it once the first goes.
	got := make(chan error, 1)
	go func() {
		o := f.opts("rollback")
		o.Wait = 20 * time.Second
		l2, err := Acquire(context.Background(), f.conn, o)
		if err == nil {
			l2.Release(context.Background(), true)
		}
		got <- err
	}()
	time.Sleep(500 * time.Millisecond)
	l.Release(context.Background(), true)
	if err := <-got; err != nil {
		t.Fatalf("waiting Acquire: %v", err)
	}
	if f.status().Held {
		t.Fatal("lock still held after both released")
	}
}

// A deploy interrupted before its point of no return: the holder undoes it
// when its input ends (shipit killed or its connection gone).
func TestHolderUndoesWhenTheClientGoes(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	os.WriteFile(filepath.Join(f.app, "releases", "r2", ".shipit-compose"), []byte("demo-r2\ndocker-compose.yml docker-compose.override.yml\n"), 0o644)
	os.MkdirAll(filepath.Join(f.app, ".shipit", "env.undo"), 0o700)
	os.WriteFile(filepath.Join(f.app, ".shipit", "env.undo", ".env"), []byte("OLD=1\n"), 0o600)
	os.WriteFile(filepath.Join(f.app, "shared", ".env"), []byte("NEW=1\n"), 0o600)
	err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true", "env_written": "true", "started": "true"})
	if err != nil {
		t.Fatal(err)
	}
	l.stdin.Close() // the client vanishes without a word
	f.waitFree(10 * time.Second)
	if exists(JournalPath(f.app)) || exists(filepath.Join(f.app, "releases", "r2")) {
		t.Fatal("journal or the interrupted release left behind")
	}
	if env, _ := os.ReadFile(filepath.Join(f.app, "shared", ".env")); string(env) != "OLD=1\n" {
		t.Fatalf("env not put back: %q", env)
	}
	if calls := f.dockerCalls(); !strings.Contains(calls, "compose -p demo-r2 -f docker-compose.yml -f docker-compose.override.yml down --remove-orphans --rmi local") {
		t.Fatalf("new release not brought down: %s", calls)
	}
}

// Past the point of no return the holder completes the switch instead:
// current and shipit.lock name the new release.
func TestHolderCompletesPastThePointOfNoReturn(t *testing.T) {
	f := newFixture(t)
	os.Symlink("releases/r1", filepath.Join(f.app, "current"))
	l := f.acquire(f.opts("deploy"))
	err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "git_sha": "abc123", "secrets_hash": "",
			"release_created": "true", "started": "true", "previous_stopped": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(filepath.Join(f.app, "current")); target != "releases/r2" {
		t.Fatalf("current -> %q", target)
	}
	lock, _ := os.ReadFile(filepath.Join(f.app, "shipit.lock"))
	if !strings.Contains(string(lock), `"current_release": "r2"`) || !strings.Contains(string(lock), `"previous_release": "r1"`) ||
		!strings.Contains(string(lock), `"git_sha": "abc123"`) {
		t.Fatalf("shipit.lock = %s", lock)
	}
	if exists(JournalPath(f.app)) {
		t.Fatal("journal left after settling")
	}
	l.Release(context.Background(), false)
	f.waitFree(5 * time.Second)
}

// A silent client (no heartbeat, connection still open) is given up on
// after the heartbeat timeout: the host settles by itself.
func TestHolderSettlesWhenHeartbeatsStop(t *testing.T) {
	f := newFixture(t)
	o := f.opts("deploy")
	o.HeartbeatEvery = -1
	l := f.acquire(o)
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-l.Lost():
	case <-time.After(15 * time.Second):
		t.Fatal("the holder did not give up on a silent client")
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("gave up after %s, before the 3s heartbeat timeout", el)
	}
	if exists(filepath.Join(f.app, "releases", "r2")) || exists(JournalPath(f.app)) {
		t.Fatal("not settled")
	}
	if !strings.Contains(f.logText(), "no heartbeat") {
		t.Logf("holder logs: %q", f.logText())
	}
}

// Whatever a killed holder left (a host reboot), the next lock settles
// before it answers "locked".
func TestNextAcquireSettlesALeftJournal(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.app, Dir), 0o700)
	journal := "J_OP='deploy'\nJ_COMPOSE='docker compose'\nS_release='r2'\nS_previous_release='r1'\nS_release_created='true'\n"
	os.WriteFile(JournalPath(f.app), []byte(journal), 0o600)
	l := f.acquire(f.opts("deploy"))
	defer l.Release(context.Background(), true)
	if exists(JournalPath(f.app)) || exists(filepath.Join(f.app, "releases", "r2")) {
		t.Fatal("the left journal was not settled before locking")
	}
	if !strings.Contains(f.logText(), "undoing the deploy of r2") {
		t.Fatalf("holder did not report the settle: %q", f.logText())
	}
}

// A deploy right after an interrupted one (the user retries at once): the
// holder whose client is gone is still settling, and the new command waits
// for it without --lock-wait instead of failing on a lock nobody holds.
func TestAcquireWaitsForAHolderThatIsSettling(t *testing.T) {
	f := newFixture(t)
	// Bringing the interrupted release down takes a while.
	shim := "#!/bin/sh\necho \"$*\" >> " + f.docker + "\ncase \"$*\" in *down*) sleep 3;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.app), "bin", "docker"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.app, "releases", "r2", ".shipit-compose"), []byte("demo-r2\ndocker-compose.yml\n"), 0o644)
	l := f.acquire(f.opts("deploy"))
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true", "started": "true"}); err != nil {
		t.Fatal(err)
	}
	l.stdin.Close()
	orphaned := filepath.Join(f.app, Dir, "orphaned")
	for deadline := time.Now().Add(10 * time.Second); !exists(orphaned); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the holder never started settling")
		}
	}
	l2 := f.acquire(f.opts("deploy")) // Wait: 0
	defer l2.Release(context.Background(), true)
	if exists(filepath.Join(f.app, "releases", "r2")) || exists(JournalPath(f.app)) || exists(orphaned) {
		t.Fatal("locked before the interrupted run was settled")
	}
	if !strings.Contains(f.logText(), "waiting for the host to settle an interrupted run: deploy by dev@laptop") {
		t.Fatalf("no word of the wait: %q", f.logText())
	}
}

func TestGoneHere(t *testing.T) {
	self := Holder{User: "dev@laptop", PID: os.Getpid()}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		holder Holder
		want   bool
	}{
		{"ended shipit of this user and machine", Holder{User: "dev@laptop", PID: dead.Process.Pid}, true},
		{"live process", Holder{User: "dev@laptop", PID: os.Getppid()}, false},
		{"this process", Holder{User: "dev@laptop", PID: os.Getpid()}, false},
		{"another machine", Holder{User: "dev@ci", PID: dead.Process.Pid}, false},
		{"no pid", Holder{User: "dev@laptop"}, false},
	}
	for _, c := range cases {
		if got := goneHere(c.holder, self); got != c.want {
			t.Errorf("%s: goneHere = %v, want %v", c.name, got, c.want)
		}
	}
}

// The hold command itself reports a host without flock(1): no command of
// its own is spent on asking.
func TestAcquireWithoutFlock(t *testing.T) {
	f := newFixture(t)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sh, filepath.Join(bin, "sh")); err != nil {
		t.Fatal(err)
	}
	f.conn.Env = []string{"PATH=" + bin}
	_, err = Acquire(context.Background(), f.conn, f.opts("deploy"))
	var nf *NoFlockError
	if !errors.As(err, &nf) || nf.Host != "h1" {
		t.Fatalf("Acquire without flock: %v, want a NoFlockError for h1", err)
	}
	if exists(filepath.Join(f.app, Dir)) {
		t.Fatal("Acquire without flock created the lock's directory")
	}
}
