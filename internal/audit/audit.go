// Package audit keeps, on each host, the record of what shipit did to an
// app there: <app_path>/audit.log, one JSON object per line (who ran which
// command, on which release and commit, how it ended and how long it
// took).
//
// The log is written by the host's own shell, under flock(1) on
// <app_path>/audit.lock (the tool every shipit host already has for the
// deploy lock), so several shipits appending at once never interleave or
// lose a line, and rotation happens under the same lock: past MaxSize the
// log becomes audit.log.1 (one old file is kept) before the next line is
// written. Files are created 0600. Lines are bounded (MaxLine) and written
// with one printf to an O_APPEND file, so even without flock a line is one
// write(2). Read tolerates a torn or garbage line (a shipit killed while
// writing): it is skipped, and the line after it is still read.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// File names in the app path.
const (
	FileName = "audit.log"
	OldName  = "audit.log.1"
	LockName = "audit.lock"
)

// MaxSize is the size past which the log is rotated to audit.log.1 before
// the next line is appended.
const MaxSize = 1 << 20

// MaxLine bounds one encoded entry: long fields are shortened so a line is
// always one write(2) (and one printf buffer of the host's shell).
const MaxLine = 3500

// TimeFormat is how entries write their time: UTC, RFC 3339, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Result is how a command ended on a host.
type Result string

// Results.
const (
	OK          Result = "ok"
	Failed      Result = "failed"
	Interrupted Result = "interrupted" // Ctrl-C, a lost client, a lock taken over
)

// Entry is one line of the log.
type Entry struct {
	Time    time.Time // when the command ended, by shipit's clock (UTC in the file)
	Command string    // deploy, rollback, setup, lock-release, recover, ...
	Stage   string
	Host    string // the host's address as written in shipit.toml
	// Who: the local user@machine that ran shipit, and the git author of
	// the project ("Name <email>").
	User   string
	Author string
	// What.
	Release         string
	PreviousRelease string
	GitSHA          string
	// How it ended: Result, the first line of the error (redacted), and
	// how long the command ran on the host.
	Result   Result
	Error    string
	Duration time.Duration
	// Verify is the verdict of [deploy.verify] on this host, when it ran:
	// "passed: ...", "rolled back: verify: ...", or a warning.
	Verify string
}

// wire is an Entry as written: field order is the line's order, time
// first (Read finds the start of an entry after a torn line by it).
type wire struct {
	Time            string `json:"time"`
	Command         string `json:"command"`
	Stage           string `json:"stage,omitempty"`
	Host            string `json:"host"`
	User            string `json:"user,omitempty"`
	Author          string `json:"author,omitempty"`
	Release         string `json:"release,omitempty"`
	PreviousRelease string `json:"previous_release,omitempty"`
	GitSHA          string `json:"git_sha,omitempty"`
	Result          Result `json:"result"`
	Error           string `json:"error,omitempty"`
	DurationMS      int64  `json:"duration_ms"`
	Verify          string `json:"verify,omitempty"`
}

// MarshalJSON writes the entry as one line of the log.
func (e Entry) MarshalJSON() ([]byte, error) {
	w := wire{
		Time: e.Time.UTC().Format(TimeFormat), Command: e.Command, Stage: e.Stage, Host: e.Host,
		User: e.User, Author: e.Author, Release: e.Release, PreviousRelease: e.PreviousRelease,
		GitSHA: e.GitSHA, Result: e.Result, Error: e.Error, DurationMS: e.Duration.Milliseconds(), Verify: e.Verify,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// UnmarshalJSON reads a line of the log; it needs a valid time.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("audit entry: bad time %q", w.Time)
	}
	*e = Entry{Time: t.UTC(), Command: w.Command, Stage: w.Stage, Host: w.Host, User: w.User, Author: w.Author,
		Release: w.Release, PreviousRelease: w.PreviousRelease, GitSHA: w.GitSHA, Result: w.Result, Error: w.Error,
		Duration: time.Duration(w.DurationMS) * time.Millisecond, Verify: w.Verify}
	return nil
}

// Finish sets how the command ended: Duration since start (when not set),
// Time (when not set), Result from err (nil: ok; context.Canceled or an
// error with `Interrupted() bool` true: interrupted; else failed) and Error,
// the first line of err passed through redact (which may be nil).
func (e *Entry) Finish(start time.Time, err error, redact func(string) string) {
	now := time.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Duration == 0 && !start.IsZero() {
		e.Duration = now.Sub(start)
	}
	e.Result, e.Error = Outcome(err, redact)
}

// Outcome is the Result of a command that ended with err, and the first
// line of err after redact (nil: no redaction).
func Outcome(err error, redact func(string) string) (Result, string) {
	if err == nil {
		return OK, ""
	}
	res := Failed
	var in interface{ Interrupted() bool }
	if errors.Is(err, context.Canceled) || (errors.As(err, &in) && in.Interrupted()) {
		res = Interrupted
	}
	msg := err.Error()
	if redact != nil {
		msg = redact(msg)
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return res, clip(strings.TrimSpace(msg), 400)
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// line encodes e as one log line (no newline), at most MaxLine bytes.
func line(e Entry) ([]byte, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) <= MaxLine {
		return b, nil
	}
	// Only free text can be long: shorten it, longest first.
	for _, f := range []*string{&e.Error, &e.Author, &e.User, &e.Release, &e.PreviousRelease, &e.Command, &e.Stage, &e.Host} {
		*f = clip(*f, 200)
		if b, err = json.Marshal(e); err != nil || len(b) <= MaxLine {
			return b, err
		}
	}
	return nil, fmt.Errorf("audit entry longer than %d bytes", MaxLine)
}

// lockWait is how long (seconds) Append and Read wait for the log's lock,
// which a writer holds for the time of one append (a variable for tests).
var lockWait = 30

// rotateAt is MaxSize; tests lower it.
var rotateAt int64 = MaxSize

// Append adds e to the log of the app at appPath on the host, rotating the
// log first when it is past MaxSize. A zero e.Time is now; e.Host defaults
// to the connection's name. The app path must exist (setup creates it).
func Append(ctx context.Context, conn remote.Conn, appPath string, e Entry) error {
	if e.Host == "" {
		e.Host = conn.Name()
	}
	b, err := line(e)
	if err != nil {
		return err
	}
	var script strings.Builder
	fmt.Fprintf(&script, "cd %s 2>/dev/null || exit 3\n", shell.Quote(appPath))
	script.WriteString("umask 077\n{\n")
	// Under the lock: rotate when too big, end a torn last line, append.
	fmt.Fprintf(&script, "if command -v flock >/dev/null 2>&1; then flock -w %d 9 || exit 4; fi\n", lockWait)
	fmt.Fprintf(&script, "if [ -f %[1]s ] && [ \"$(($(wc -c < %[1]s)))\" -ge %[2]d ]; then mv -f %[1]s %[3]s || exit 5; fi\n",
		FileName, rotateAt, OldName)
	fmt.Fprintf(&script, "if [ -s %[1]s ] && [ -n \"$(tail -c 1 %[1]s)\" ]; then printf '\\n' >> %[1]s; fi\n", FileName)
	fmt.Fprintf(&script, "printf '%%s\\n' %s >> %s\n", shell.Quote(string(b)), FileName)
	fmt.Fprintf(&script, "} 9>>%s\n", LockName)
	var errb bytes.Buffer
	code, err := conn.Run(ctx, script.String(), nil, io.Discard, &errb)
	switch {
	case err != nil:
		return fmt.Errorf("host %s: writing the audit log: %w", conn.Name(), err)
	case code == 3:
		return hint.Errorf("run `shipit setup` (or a deploy) first: it creates the app's directory",
			"host %s: cannot write the audit log: no directory %s", conn.Name(), appPath)
	case code == 4:
		return hint.Errorf("something holds it: see `fuser "+path.Join(appPath, LockName)+"` on the host",
			"host %s: the audit log's lock %s stayed taken for %ds", conn.Name(), path.Join(appPath, LockName), lockWait)
	case code != 0:
		return hint.Wrap(remote.Failed(conn.Name(), "append to "+path.Join(appPath, FileName), code, errb.String(), ""),
			"check that the deploy user owns "+appPath+" and the disk is not full")
	}
	return nil
}

// Read returns the last n entries of the app's log on the host (n <= 0:
// every entry), oldest first, reading into audit.log.1 when audit.log holds
// fewer. Lines that are not entries (a torn write) are skipped. No log (or
// no app) is no entries.
func Read(ctx context.Context, conn remote.Conn, appPath string, n int) ([]Entry, error) {
	tail := "cat"
	if n > 0 {
		// A few more lines than asked, in case some are garbage.
		tail = "tail -n " + strconv.Itoa(n+16)
	}
	var script strings.Builder
	fmt.Fprintf(&script, "cd %s 2>/dev/null || exit 0\n", shell.Quote(appPath))
	// A shared lock: a rotation cannot happen between the two reads.
	fmt.Fprintf(&script, "if [ -e %[1]s ] && command -v flock >/dev/null 2>&1; then exec 9<%[1]s && flock -s -w %[2]d 9; fi\n", LockName, lockWait)
	fmt.Fprintf(&script, "if [ -f %[2]s ]; then %[1]s %[2]s; echo; fi\n", tail, OldName)
	fmt.Fprintf(&script, "if [ -f %[2]s ]; then %[1]s %[2]s; fi\n", tail, FileName)
	out, err := remote.Output(ctx, conn, script.String())
	if err != nil {
		return nil, err
	}
	entries := Parse(out)
	if n > 0 && len(entries) > n {
		entries = entries[len(entries)-n:]
	}
	return entries, nil
}

// Parse reads log lines, skipping what is not an entry. A line holding a
// torn entry followed by a whole one yields the whole one.
func Parse(text string) []Entry {
	var out []Entry
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err == nil {
			out = append(out, e)
			continue
		}
		if i := strings.LastIndex(l, `{"time":`); i > 0 {
			if err := json.Unmarshal([]byte(l[i:]), &e); err == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// Merge combines several hosts' entries into one list ordered by time; the
// order of equal times is kept (the lists' order, then each list's).
func Merge(lists ...[]Entry) []Entry {
	var all []Entry
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all
}

// Last returns the last n entries (n <= 0: all).
func Last(entries []Entry, n int) []Entry {
	if n > 0 && len(entries) > n {
		return entries[len(entries)-n:]
	}
	return entries
}
