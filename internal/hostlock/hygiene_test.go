package hostlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSleep runs an unrelated process; alive reports whether it still runs.
func startSleep(t *testing.T) (pid int, alive func() bool) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return cmd.Process.Pid, func() bool {
		select {
		case <-exited:
			return false
		case <-time.After(300 * time.Millisecond):
			return true
		}
	}
}

// writeHolder leaves a holder file naming pid, as a holder that died
// without cleaning up (a reboot, an OOM kill) leaves it.
func (f *fixture) writeHolder(pid int) {
	f.t.Helper()
	s := filepath.Join(f.app, Dir)
	os.MkdirAll(s, 0o700)
	holder := fmt.Sprintf(`{"user":"dev@laptop","pid":42,"command":"deploy","since":"2026-01-02T03:04:05Z","holder_pid":%d}`, pid)
	if err := os.WriteFile(filepath.Join(s, "holder"), []byte(holder+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s, "lock"), nil, 0o600)
}

// The reproduction: a stale holder file names the pid of an
// unrelated `sleep`. status calls the lock free (the holder is stale) and
// `lock release --force` removes the file without signalling the sleep.
func TestStaleHolderFileNeverSignalsAnUnrelatedProcess(t *testing.T) {
	f := newFixture(t)
	pid, alive := startSleep(t)
	f.writeHolder(pid)
	st := f.status()
	if st.Held || !st.Stale || st.Holder.HolderPID != pid || st.Holder.Command != "deploy" {
		t.Fatalf("status = %+v, want free with a stale holder naming pid %d", st, pid)
	}
	k, err := Kill(context.Background(), f.conn, f.app)
	if err != nil {
		t.Fatal(err)
	}
	if k.Signalled != 0 || !k.Stale {
		t.Fatalf("Kill = %+v, want the stale file removed and nothing signalled", k)
	}
	if !alive() {
		t.Fatal("the unrelated sleep was killed")
	}
	if exists(filepath.Join(f.app, Dir, "holder")) {
		t.Fatal("stale holder file left")
	}
	if st := f.status(); st.Held || st.Stale {
		t.Fatalf("status after = %+v", st)
	}
	// And the lock is taken as usual afterwards.
	l := f.acquire(f.opts("deploy"))
	l.Release(context.Background(), true)
}

// The lock is held, but by a process the holder file does not name: Kill
// refuses to signal the pid it cannot verify.
func TestKillRefusesAPidThatDoesNotHoldTheLock(t *testing.T) {
	f := newFixture(t)
	pid, alive := startSleep(t)
	f.writeHolder(pid)
	other := exec.Command("flock", filepath.Join(f.app, Dir, "lock"), "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	for deadline := time.Now().Add(5 * time.Second); !f.status().Held; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other process never took the lock")
		}
	}
	_, err := Kill(context.Background(), f.conn, f.app)
	var unv *UnverifiedError
	if !errors.As(err, &unv) || unv.Holder.HolderPID != pid {
		t.Fatalf("Kill = %v, want an UnverifiedError naming %d", err, pid)
	}
	if !alive() {
		t.Fatal("a pid that does not hold the lock was signalled")
	}
}

// A live holder is verified through the lock and signalled: it settles
// and lets go.
func TestKillSignalsTheRealHolder(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	hp := f.status().Holder.HolderPID
	k, err := Kill(context.Background(), f.conn, f.app)
	if err != nil || k.Signalled != hp || hp == 0 {
		t.Fatalf("Kill = %+v, %v; holder pid %d", k, err, hp)
	}
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the signalled holder did not end")
	}
	f.waitFree(5 * time.Second)
}

// A journal dash cannot source (it would end the holder, and every later
// lock with it), or one a crash cut short, is kept aside and reported;
// the lock is taken anyway.
func TestCorruptJournalIsKeptAsideAndDoesNotBlockTheLock(t *testing.T) {
	cases := map[string]string{
		"syntax error": "J_OP='deploy'\nS_release='r2\n",
		"cut short":    journalHeader + "\nJ_OP='deploy'\nS_release='r2'\n",
		"garbage":      "J_OP='deploy'\n\x00\x01 ( ;; )\n",
	}
	for name, journal := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			os.MkdirAll(filepath.Join(f.app, Dir), 0o700)
			os.WriteFile(JournalPath(f.app), []byte(journal), 0o600)
			l := f.acquire(f.opts("deploy"))
			defer l.Release(context.Background(), true)
			kept, _ := filepath.Glob(filepath.Join(f.app, Dir, "journal.corrupt-*"))
			if len(kept) != 1 || exists(JournalPath(f.app)) || exists(JournalPath(f.app)+".settling") {
				t.Fatalf("kept aside: %v; journal still there: %v", kept, exists(JournalPath(f.app)))
			}
			if b, _ := os.ReadFile(kept[0]); string(b) != journal {
				t.Fatalf("kept journal differs: %q", b)
			}
			if !exists(filepath.Join(f.app, "releases", "r2")) {
				t.Fatal("a corrupt journal was acted on")
			}
			if !strings.Contains(f.logText(), "the journal is corrupt") || !strings.Contains(f.logText(), kept[0]) {
				t.Fatalf("not reported: %q", f.logText())
			}
			if st := f.status(); len(st.Corrupt) != 1 || st.Corrupt[0] != kept[0] {
				t.Fatalf("status = %+v", st)
			}
		})
	}
}

// A whole v2 journal still settles (the trailer is there), and each write
// is fsynced: the temp file before the rename, the directory after it.
func TestJournalWritesAreDurable(t *testing.T) {
	f := newFixture(t)
	synced := filepath.Join(filepath.Dir(f.app), "sync.log")
	shim := "#!/bin/sh\necho \"$*\" >> " + synced + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.app), "bin", "sync"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	l := f.acquire(f.opts("deploy"))
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(synced)
	want := "-- " + filepath.Join(f.app, Dir, "journal.in") + "\n-- " + filepath.Join(f.app, Dir) + "\n"
	if string(b) != want {
		t.Fatalf("sync calls = %q, want %q", b, want)
	}
	j, _ := os.ReadFile(JournalPath(f.app))
	if !strings.HasPrefix(string(j), journalHeader+"\n") || !strings.HasSuffix(string(j), "\n"+journalEnd+"\n") {
		t.Fatalf("journal = %q", j)
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(f.app, "releases", "r2")) || exists(JournalPath(f.app)) {
		t.Fatal("a whole v2 journal was not settled")
	}
	if kept, _ := filepath.Glob(filepath.Join(f.app, Dir, "journal.corrupt-*")); len(kept) > 0 {
		t.Fatalf("a whole journal was called corrupt: %v", kept)
	}
	l.Release(context.Background(), true)
}

// Without a sync(1) that takes arguments the write still succeeds.
func TestJournalWriteWithoutFileSync(t *testing.T) {
	f := newFixture(t)
	shim := "#!/bin/sh\n[ $# -eq 0 ] || { echo 'sync: extra operand' >&2; exit 1; }\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.app), "bin", "sync"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	l := f.acquire(f.opts("deploy"))
	defer l.Release(context.Background(), true)
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy"}, map[string]string{"release": "r2"}); err != nil {
		t.Fatal(err)
	}
	if !exists(JournalPath(f.app)) {
		t.Fatal("no journal")
	}
}

// The holder brings a release down with its compose files as recorded,
// one a line: a name with a space and a glob character reaches compose as
// one word, unexpanded (files it would match are there).
func TestSettleKeepsComposeFileNamesWhole(t *testing.T) {
	f := newFixture(t)
	shim := "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done >> " + f.docker + "\necho >> " + f.docker + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.app), "bin", "docker"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	r2 := filepath.Join(f.app, "releases", "r2")
	os.WriteFile(filepath.Join(r2, ".shipit-compose"), []byte("demo-r2\nmy app*.yml\ndocker-compose.override.yml\n"), 0o644)
	os.WriteFile(filepath.Join(r2, "my app1.yml"), nil, 0o644)
	os.WriteFile(filepath.Join(r2, "my app2.yml"), nil, 0o644)
	l := f.acquire(f.opts("deploy"))
	defer l.Release(context.Background(), true)
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "started": "true"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "<compose><-p><demo-r2><-f><my app*.yml><-f><docker-compose.override.yml><down><--remove-orphans><--rmi><local>"
	if calls := f.dockerCalls(); !strings.Contains(calls, want) {
		t.Fatalf("docker calls:\n%s\nwant %s", calls, want)
	}
}

// FileLock is exclusive, bounded by its wait, and let go by unlock.
func TestFileLock(t *testing.T) {
	f := newFixture(t)
	file := filepath.Join(f.app, Dir, "config.lock")
	unlock, err := FileLock(context.Background(), f.conn, file, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := FileLock(context.Background(), f.conn, file, time.Second); err == nil || !strings.Contains(err.Error(), "still locked") {
		t.Fatalf("second FileLock while held: %v", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("gave up after %s, before its 1s wait", el)
	}
	unlock()
	unlock2, err := FileLock(context.Background(), f.conn, file, time.Second)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v", err)
	}
}
