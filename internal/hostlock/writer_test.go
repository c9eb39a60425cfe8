package hostlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 17 item 1 as it was found: the holder gives a silent client up and
// undoes its deploy; whatever that client sends afterwards (a mark, any
// command behind the run's guard) changes nothing: no journal comes back.
func TestSettledRunRefusesMarksAndCommands(t *testing.T) {
	f := newFixture(t)
	o := f.opts("deploy")
	o.HeartbeatEvery = -1 // silent: the holder settles after its 3s timeout
	l := f.acquire(o)
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(15 * time.Second):
		t.Fatal("the holder did not give up on a silent client")
	}
	if exists(filepath.Join(f.app, "releases", "r2")) || exists(JournalPath(f.app)) {
		t.Fatal("not settled")
	}
	err := l.Record(context.Background(), map[string]string{"release": "r2", "previous_release": "r1", "previous_stopped": "true"})
	var lost *LostError
	if !errors.As(err, &lost) {
		t.Fatalf("Record after the settle: %v, want a *LostError", err)
	}
	if !strings.Contains(err.Error(), "the host settled this run without shipit: it undid the deploy of r2") {
		t.Fatalf("Record's error does not say what the host did: %v", err)
	}
	if exists(JournalPath(f.app)) {
		t.Fatal("a settled journal came back")
	}
	marker := filepath.Join(f.app, "after-settle")
	var errb strings.Builder
	code, err := f.conn.Run(context.Background(), l.Guard()+"touch "+marker, nil, nil, &errb)
	if err != nil || code != GuardExit || exists(marker) {
		t.Fatalf("guarded command after the settle: code %d, err %v, ran: %v", code, err, exists(marker))
	}
	if !strings.Contains(errb.String(), "the host settled this run without shipit") || !strings.Contains(errb.String(), "undid the deploy of r2") {
		t.Fatalf("guard's refusal = %q", errb.String())
	}
	// An upload's check (an SFTP read of the epoch, no command) refuses too.
	if err := l.Verify(context.Background(), f.conn); err == nil || !strings.Contains(err.Error(), "undid the deploy of r2") {
		t.Fatalf("Verify after the settle: %v", err)
	}
}

// While the run is live its guard lets commands through; once another run
// holds the lock, the old run's guard refuses.
func TestGuardIsPerRun(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	marker := filepath.Join(f.app, "live")
	if err := l.Verify(context.Background(), f.conn); err != nil {
		t.Fatalf("Verify of a live run: %v", err)
	}
	if code, err := f.conn.Run(context.Background(), l.Guard()+"touch "+marker, nil, nil, nil); err != nil || code != 0 || !exists(marker) {
		t.Fatalf("guarded command of a live run: code %d, err %v", code, err)
	}
	old := l.Guard()
	l.Release(context.Background(), true)
	l2 := f.acquire(f.opts("deploy"))
	defer l2.Release(context.Background(), true)
	if code, _ := f.conn.Run(context.Background(), old+"true", nil, nil, nil); code != GuardExit {
		t.Fatalf("an earlier run's guard under a new holder: code %d", code)
	}
}

// Each mark is written by the holder and acknowledged before Record
// returns; a completed run's journal is removed by the holder too.
func TestHolderWritesTheJournal(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	state := map[string]string{"release": "r2", "previous_release": "r1", "note": "two\nlines 'quoted'"}
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"}, state); err != nil {
		t.Fatal(err)
	}
	want, _ := journalText(map[string]string{"op": "deploy", "compose": "docker compose"}, state)
	if got, _ := os.ReadFile(JournalPath(f.app)); string(got) != want {
		t.Fatalf("journal = %q, want %q", got, want)
	}
	l.Release(context.Background(), true)
	if exists(JournalPath(f.app)) {
		t.Fatal("journal left after a completed run")
	}
	if b, _ := os.ReadFile(filepath.Join(f.app, Dir, "epoch")); !strings.HasPrefix(string(b), "ended ") {
		t.Fatalf("epoch after a completed run = %q", b)
	}
}

// A heartbeat the host cannot record is an error, not silence: shipit
// gives the host up at once, and the holder settles.
func TestFailedHeartbeatWriteIsAnError(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	if err := l.Begin(context.Background(), map[string]string{"op": "deploy", "compose": "docker compose"},
		map[string]string{"release": "r2", "previous_release": "r1", "release_created": "true"}); err != nil {
		t.Fatal(err)
	}
	// A directory where the heartbeat's temp file goes: the write fails.
	os.Mkdir(filepath.Join(f.app, Dir, "heartbeat.tmp"), 0o700)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("a failed heartbeat write went unnoticed")
	}
	if err := l.Check(); err == nil || !strings.Contains(err.Error(), "could not record a heartbeat") {
		t.Fatalf("Check = %v", err)
	}
	f.waitFree(10 * time.Second)
	if exists(filepath.Join(f.app, "releases", "r2")) || exists(JournalPath(f.app)) {
		t.Fatal("not settled after shipit gave the host up")
	}
	os.Remove(filepath.Join(f.app, Dir, "heartbeat.tmp"))
}

// A shipit that was frozen past its own timeout (no answered heartbeat
// for ClientTimeout) sends nothing more: it gives the host up at once.
func TestStaleClientGivesUpBeforeSending(t *testing.T) {
	f := newFixture(t)
	l := f.acquire(f.opts("deploy"))
	l.mu.Lock()
	l.lastAck = time.Now().Add(-time.Minute) // as after a SIGSTOP
	l.mu.Unlock()
	err := l.Begin(context.Background(), map[string]string{"op": "deploy"}, map[string]string{"release": "r2"})
	var lost *LostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "no heartbeat answered") {
		t.Fatalf("Record from a stale client: %v", err)
	}
	if exists(JournalPath(f.app)) {
		t.Fatal("a stale client wrote a journal")
	}
	f.waitFree(10 * time.Second)
}
