package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// The log is written by the local sh (dash on Debian, like a host's
// /bin/sh) through localconn; the end-to-end tests use real sshd.

func newApp(t *testing.T) (*localconn.Conn, string) {
	t.Helper()
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	return &localconn.Conn{HostName: "h1", Dir: dir}, app
}

func withRotateAt(t *testing.T, n int64) {
	old := rotateAt
	rotateAt = n
	t.Cleanup(func() { rotateAt = old })
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)

func entry(i int) Entry {
	return Entry{Time: t0.Add(time.Duration(i) * time.Second), Command: "deploy", Stage: "production", Host: "h1",
		User: "dev@laptop", Author: "Dev <dev@example.com>", Release: fmt.Sprintf("r%03d", i), Result: OK, Duration: 1500 * time.Millisecond}
}

func lines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestAppendAndReadRoundTrip(t *testing.T) {
	conn, app := newApp(t)
	ctx := context.Background()
	hostile := Entry{Time: t0, Command: "rollback", Stage: "prod'uction", Host: "h1", User: "o'brien@$(reboot)",
		Author: "A `b` \"c\" <a@b>", Release: "r2", PreviousRelease: "r1", GitSHA: "0123456789abcdef0123456789abcdef01234567",
		Result: Failed, Error: "boom: 'quoted' $HOME \\ ünï ✓\tend", Duration: 61234 * time.Millisecond}
	for _, e := range []Entry{entry(1), entry(2), hostile} {
		if err := Append(ctx, conn, app, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Read(ctx, conn, app, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Release != "r002" || got[1] != hostile {
		t.Fatalf("Read(2) = %+v", got)
	}
	all, err := Read(ctx, conn, app, 0)
	if err != nil || len(all) != 3 || all[0] != entry(1) {
		t.Fatalf("Read(0) = %+v, %v", all, err)
	}
	raw := lines(t, filepath.Join(app, FileName))
	if len(raw) != 3 || !strings.HasPrefix(raw[0], `{"time":"2025-03-04T05:06:08.891Z","command":"deploy",`) ||
		!strings.Contains(raw[0], `"duration_ms":1500`) {
		t.Fatalf("log lines:\n%s", strings.Join(raw, "\n"))
	}
	for _, name := range []string{FileName, LockName} {
		fi, err := os.Stat(filepath.Join(app, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", name, fi.Mode().Perm())
		}
	}
}

func TestHostAndTimeDefaults(t *testing.T) {
	conn, app := newApp(t)
	before := time.Now().Add(-time.Second)
	if err := Append(context.Background(), conn, app, Entry{Command: "setup", Result: OK}); err != nil {
		t.Fatal(err)
	}
	got, err := Read(context.Background(), conn, app, 5)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if got[0].Host != "h1" || got[0].Time.Before(before) || got[0].Time.Location() != time.UTC {
		t.Fatalf("defaults not applied: %+v", got[0])
	}
}

func TestNoAppDirectory(t *testing.T) {
	conn, app := newApp(t)
	missing := filepath.Join(app, "nope")
	err := Append(context.Background(), conn, missing, entry(1))
	if err == nil || !strings.Contains(err.Error(), "no directory "+missing) || !strings.Contains(hint.Of(err), "shipit setup") {
		t.Fatalf("Append to a missing app: %v (hint %q)", err, hint.Of(err))
	}
	got, err := Read(context.Background(), conn, missing, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read of a missing app: %v, %v", got, err)
	}
	got, err = Read(context.Background(), conn, app, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read of an app without a log: %v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(app, LockName)); !os.IsNotExist(err) {
		t.Fatalf("Read created the lock file: %v", err)
	}
}

// The append that finds the log at or past the limit moves it to
// audit.log.1 first; Read reads across the two files; one old file is kept.
func TestRotationBoundary(t *testing.T) {
	conn, app := newApp(t)
	ctx := context.Background()
	lineLen, _ := line(entry(1))
	per := int64(len(lineLen) + 1)
	withRotateAt(t, 3*per) // three lines fill the log
	log, old := filepath.Join(app, FileName), filepath.Join(app, OldName)
	for i := 1; i <= 3; i++ {
		if err := Append(ctx, conn, app, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(lines(t, log)); n != 3 || lines(t, old) != nil {
		t.Fatalf("before the limit: %d lines, old file %v", n, lines(t, old))
	}
	if err := Append(ctx, conn, app, entry(4)); err != nil {
		t.Fatal(err)
	}
	if o, c := lines(t, old), lines(t, log); len(o) != 3 || len(c) != 1 || !strings.Contains(c[0], `"r004"`) {
		t.Fatalf("after the limit: old %q, current %q", o, c)
	}
	if fi, _ := os.Stat(old); fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated file mode %o", fi.Mode().Perm())
	}
	got, err := Read(ctx, conn, app, 3)
	if err != nil {
		t.Fatal(err)
	}
	if releases(got) != "r002 r003 r004" {
		t.Fatalf("Read across the rotation: %s", releases(got))
	}
	// Fill again and rotate again: r001..r003 are gone, r004..r006 are old.
	for i := 5; i <= 7; i++ {
		if err := Append(ctx, conn, app, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err = Read(ctx, conn, app, 0)
	if err != nil {
		t.Fatal(err)
	}
	if releases(got) != "r004 r005 r006 r007" {
		t.Fatalf("after a second rotation: %s", releases(got))
	}
	if _, err := os.Stat(filepath.Join(app, OldName+".1")); !os.IsNotExist(err) {
		t.Fatal("more than one old file")
	}
}

func releases(es []Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Release)
	}
	return strings.Join(s, " ")
}

// A shipit killed mid-write leaves a torn line (no newline) and maybe
// garbage: they are skipped, and the next append starts a line of its own.
func TestTornAndGarbageLines(t *testing.T) {
	conn, app := newApp(t)
	ctx := context.Background()
	good, _ := line(entry(1))
	torn, _ := line(entry(2))
	content := string(good) + "\nnot json at all\n{\"time\":\"yesterday\",\"command\":\"x\"}\n\x00\x01\n" + string(torn[:len(torn)/2])
	if err := os.WriteFile(filepath.Join(app, FileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Append(ctx, conn, app, entry(3)); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, conn, app, 0)
	if err != nil {
		t.Fatal(err)
	}
	if releases(got) != "r001 r003" {
		t.Fatalf("Read = %s", releases(got))
	}
	// A torn entry glued to a whole one (written by a shipit without this
	// precaution) still yields the whole one.
	if got := Parse(string(torn[:20]) + string(good) + "\n"); releases(got) != "r001" {
		t.Fatalf("Parse of a glued line = %s", releases(got))
	}
}

// Several writers (separate sh processes, as several shipits on one host)
// append at once: every line is whole, none is lost or duplicated.
func TestConcurrentAppends(t *testing.T) {
	conn, app := newApp(t)
	const writers, each = 8, 25
	appendAll(t, conn, app, writers, each)
	got := Parse(strings.Join(lines(t, filepath.Join(app, FileName)), "\n"))
	if len(lines(t, filepath.Join(app, FileName))) != writers*each || len(got) != writers*each {
		t.Fatalf("%d lines, %d entries; want %d", len(lines(t, filepath.Join(app, FileName))), len(got), writers*each)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Release] {
			t.Fatalf("duplicate %s", e.Release)
		}
		seen[e.Release] = true
	}
}

// The same with rotations happening while others append: the lines kept
// are whole, and each writer's kept lines are its latest ones, with no
// gap (a rotation never drops a line or a whole old file it should keep).
func TestConcurrentAppendsAcrossRotations(t *testing.T) {
	conn, app := newApp(t)
	withRotateAt(t, 6*1024)
	const writers, each = 6, 30
	appendAll(t, conn, app, writers, each)
	var all []string
	for _, name := range []string{OldName, FileName} {
		ls := lines(t, filepath.Join(app, name))
		if len(ls) == 0 {
			t.Fatalf("%s is empty", name)
		}
		if fi, _ := os.Stat(filepath.Join(app, name)); fi.Size() > rotateAt+MaxLine {
			t.Fatalf("%s has %d bytes, limit %d", name, fi.Size(), rotateAt)
		}
		all = append(all, ls...)
	}
	got := Parse(strings.Join(all, "\n"))
	if len(got) != len(all) {
		t.Fatalf("%d of %d lines are not whole entries", len(all)-len(got), len(all))
	}
	perWriter := map[string][]int{}
	for _, e := range got {
		var w string
		var i int
		if _, err := fmt.Sscanf(e.Release, "w%1s-%d", &w, &i); err != nil {
			t.Fatalf("release %q: %v", e.Release, err)
		}
		perWriter[w] = append(perWriter[w], i)
	}
	for w, seq := range perWriter {
		for k, i := range seq {
			if want := each - len(seq) + k; i != want {
				t.Fatalf("writer %s kept %v: not its latest %d entries in order", w, seq, len(seq))
			}
		}
	}
	if len(got) >= writers*each {
		t.Fatalf("all %d lines kept: the log never rotated twice", len(got))
	}
}

func appendAll(t *testing.T, conn *localconn.Conn, app string, writers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer its own connection, as separate shipits.
			c := &localconn.Conn{HostName: conn.HostName, Dir: conn.Dir}
			for i := 0; i < each; i++ {
				e := entry(i)
				e.Release = fmt.Sprintf("w%c-%d", 'a'+w, i)
				e.Error = strings.Repeat("x", 200) // longer lines, more chance to interleave
				if err := Append(context.Background(), c, app, e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestLongFieldsAreClipped(t *testing.T) {
	conn, app := newApp(t)
	e := entry(1)
	e.Error = strings.Repeat("é", 5000)
	e.Author = strings.Repeat("a", 5000)
	if err := Append(context.Background(), conn, app, e); err != nil {
		t.Fatal(err)
	}
	raw := lines(t, filepath.Join(app, FileName))
	if len(raw) != 1 || len(raw[0]) > MaxLine {
		t.Fatalf("line of %d bytes", len(raw[0]))
	}
	got, err := Read(context.Background(), conn, app, 1)
	if err != nil || len(got) != 1 || !strings.HasSuffix(got[0].Error, "é…") {
		t.Fatalf("%+v %v", got, err)
	}
}

// lostLock is an error that says it interrupted the run (as a deploy lock
// taken over by `shipit lock release --force`).
type lostLock struct{}

func (lostLock) Error() string     { return "lock taken over" }
func (lostLock) Interrupted() bool { return true }

func redactSecret(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
func wrapped(err error) error      { return fmt.Errorf("step deploy:start: %w", err) }

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		res  Result
		text string
	}{
		{nil, OK, ""},
		{wrapped(context.Canceled), Interrupted, "step deploy:start: context canceled"},
		{wrapped(lostLock{}), Interrupted, "step deploy:start: lock taken over"},
		{wrapped(context.DeadlineExceeded), Failed, "step deploy:start: context deadline exceeded"},
		{errors.New("password hunter2 refused\n  | more\n  | lines"), Failed, "password *** refused"},
	} {
		res, text := Outcome(c.err, redactSecret)
		if res != c.res || text != c.text {
			t.Errorf("Outcome(%v) = %s %q, want %s %q", c.err, res, text, c.res, c.text)
		}
	}
	if _, text := Outcome(errors.New(strings.Repeat("y", 1000)), nil); len(text) > 400 {
		t.Errorf("error not clipped: %d bytes", len(text))
	}
	var e Entry
	start := time.Now().Add(-2 * time.Second)
	e.Finish(start, wrapped(context.Canceled), nil)
	if e.Result != Interrupted || e.Duration < 2*time.Second || e.Time.IsZero() {
		t.Fatalf("Finish: %+v", e)
	}
}

func TestMergeByTime(t *testing.T) {
	a := []Entry{{Time: t0, Host: "a", Release: "1"}, {Time: t0.Add(2 * time.Second), Host: "a", Release: "3"}, {Time: t0.Add(4 * time.Second), Host: "a", Release: "5"}}
	b := []Entry{{Time: t0.Add(time.Second), Host: "b", Release: "2"}, {Time: t0.Add(2 * time.Second), Host: "b", Release: "3b"}, {Time: t0.Add(3 * time.Second), Host: "b", Release: "4"}}
	got := Merge(a, b)
	if releases(got) != "1 2 3 3b 4 5" {
		t.Fatalf("Merge = %s", releases(got))
	}
	if releases(Last(got, 2)) != "4 5" || len(Last(got, 0)) != 6 || len(Last(got, 10)) != 6 {
		t.Fatal("Last")
	}
}

// A lock that stays taken (a stuck process on the host) fails the append
// after lockWait, naming the lock, instead of hanging.
func TestLockHeldTooLong(t *testing.T) {
	conn, app := newApp(t)
	old := lockWait
	lockWait = 1
	t.Cleanup(func() { lockWait = old })
	lock := filepath.Join(app, LockName)
	holder := exec.Command("flock", lock, "sleep", "10")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	for i := 0; exec.Command("flock", "-n", lock, "true").Run() == nil; i++ {
		if i > 100 {
			t.Fatal("the holder never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	err := Append(context.Background(), conn, app, entry(1))
	if err == nil || !strings.Contains(err.Error(), "the audit log's lock "+lock+" stayed taken for 1s") || !strings.Contains(hint.Of(err), "fuser") {
		t.Fatalf("%v / %s", err, hint.Of(err))
	}
	// Readers wait as long, then read anyway.
	if _, err := Read(context.Background(), conn, app, 5); err != nil {
		t.Fatal(err)
	}
}
