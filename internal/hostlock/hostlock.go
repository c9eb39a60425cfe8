// Package hostlock keeps one deploy, rollback or setup of an app on a host
// at a time, and makes sure an interrupted one never leaves the host half
// switched.
//
// The lock is flock(1) held by a small sh process on the host (host.sh,
// sent inline) whose stdin is shipit's SSH session. shipit writes a journal
// of the change in flight to the host before each point where the host
// changes; shipit sends a heartbeat on the session every second. When the
// session ends (shipit killed, connection cut) or the heartbeat stops (a
// silent partition), the holder settles the journal itself — undoes the
// change, or completes it past its point of no return — and only then lets
// the lock go. Every command that takes the lock first settles whatever
// an earlier run left (a host that rebooted mid-deploy).
package hostlock

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

//go:embed host.sh
var hostScript string

// Dir is where the lock, the journal and the holder live, in the app's
// directory (0700).
const Dir = ".shipit"

// JournalPath is the journal of an app at appPath.
func JournalPath(appPath string) string { return path.Join(appPath, Dir, "journal") }

// Holder says who holds a lock.
type Holder struct {
	User      string    `json:"user"`    // local user@machine
	PID       int       `json:"pid"`     // shipit's pid there
	Command   string    `json:"command"` // deploy, rollback, setup, recover
	Release   string    `json:"release,omitempty"`
	Since     time.Time `json:"since"`
	HolderPID int       `json:"holder_pid"` // the holder process on the host
}

func (h Holder) String() string {
	s := fmt.Sprintf("%s by %s (pid %d) since %s", h.Command, h.User, h.PID, h.Since.UTC().Format(time.RFC3339))
	if h.Release != "" {
		s += ", release " + h.Release
	}
	return s
}

// BusyError means another shipit holds the lock.
type BusyError struct {
	Host     string
	Holder   Holder
	Waited   time.Duration
	Settling bool // the holder had lost its client and was settling
}

func (e *BusyError) Error() string {
	if e.Settling {
		return fmt.Sprintf("host %s: still settling an interrupted run after waiting %s: %s", e.Host, e.Waited, e.Holder)
	}
	if e.Waited > 0 {
		return fmt.Sprintf("host %s: still locked after waiting %s: %s", e.Host, e.Waited, e.Holder)
	}
	return fmt.Sprintf("host %s: locked: %s", e.Host, e.Holder)
}

func (e *BusyError) Hint() string {
	return "wait for it (--lock-wait 10m queues behind it); `shipit lock status` shows the holder. " +
		"The lock goes as soon as that shipit ends or loses its connection, after the host has settled what it left"
}

// Options configure Acquire.
type Options struct {
	AppPath, App, Stage string
	Holder              Holder
	Wait                time.Duration // how long to queue behind another holder (0: fail at once)
	HeartbeatTimeout    time.Duration // the holder settles after this long without a heartbeat (default 15s)
	HeartbeatEvery      time.Duration // default 1s; negative: none (tests of a silent client)
	Logf                func(string)  // what the holder reports (settling, backstop, waiting)
}

// Lock is a held lock.
type Lock struct {
	conn  remote.Conn
	opts  Options
	stdin *io.PipeWriter

	mu      sync.Mutex
	meta    map[string]string
	journal bool // a journal was written and not yet settled

	settled chan struct{} // one value per "settled" line
	done    chan struct{} // the holder's session ended
	err     error         // why it ended
	closing bool
}

// command is the remote command running host.sh with args.
func command(args ...string) string {
	return "exec sh -c " + shell.Quote(hostScript) + " shipit-host " + shell.Join(args...)
}

// NoFlockError means the host lacks flock(1).
type NoFlockError struct{ Host string }

func (e *NoFlockError) Error() string {
	return fmt.Sprintf("host %s: flock(1) is not installed: shipit cannot lock the host against concurrent deploys", e.Host)
}

func (e *NoFlockError) Hint() string {
	return "install util-linux (Debian/Ubuntu) or busybox's flock (Alpine), e.g. apt-get install util-linux"
}

// settleWait bounds how long a command queues, without --lock-wait, behind
// a holder whose client is gone (host.sh's SETTLE_WAIT).
const settleWait = 300 * time.Second

// Acquire takes the lock of the app at o.AppPath on c. The holder first
// settles what an earlier run left; its reports go to o.Logf.
func Acquire(ctx context.Context, c remote.Conn, o Options) (*Lock, error) {
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 15 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string) {}
	}
	l, err := acquire(ctx, c, o)
	var busy *BusyError
	if errors.As(err, &busy) && o.Wait == 0 && !busy.Settling && goneHere(busy.Holder, o.Holder) {
		// The user retries right after an interrupted run, before the host
		// noticed that its client went away: queue behind the settle.
		o.Logf("the shipit that held the lock (pid " + strconv.Itoa(busy.Holder.PID) + " on this machine) is gone; waiting for the host to settle its run")
		o.Wait = o.HeartbeatTimeout + settleWait
		l, err = acquire(ctx, c, o)
		if errors.As(err, &busy) {
			busy.Settling = true
		}
	}
	return l, err
}

// goneHere reports whether holder was started by this user on this machine
// by a process that no longer runs.
func goneHere(holder, self Holder) bool {
	if holder.User != self.User || holder.PID <= 0 || holder.PID == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(holder.PID, 0), syscall.ESRCH)
}

func acquire(ctx context.Context, c remote.Conn, o Options) (*Lock, error) {
	if code, err := c.Run(ctx, "command -v flock >/dev/null", nil, io.Discard, io.Discard); err != nil {
		return nil, err
	} else if code != 0 {
		return nil, &NoFlockError{Host: c.Name()}
	}
	o.Holder.HolderPID = 0 // host.sh fills it in
	holder, _ := json.Marshal(o.Holder)
	cmd := command("hold", o.AppPath, o.App, o.Stage, strconv.Itoa(int(o.Wait.Seconds())),
		strconv.Itoa(int(o.HeartbeatTimeout.Seconds())), string(holder))
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	var errb bytes.Buffer
	l := &Lock{conn: c, opts: o, stdin: stdinW, settled: make(chan struct{}, 8), done: make(chan struct{})}
	// The lock outlives a cancelled step: after Ctrl-C it is held until the
	// undo has run, then released.
	sessCtx := context.WithoutCancel(ctx)
	go func() {
		code, err := c.Run(sessCtx, cmd, stdinR, outW, &errb)
		if err == nil && code != 0 {
			err = remote.Failed(c.Name(), "shipit-host hold", code, errb.String(), "")
		}
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		outW.Close()
		close(l.done)
	}()
	lines := bufio.NewScanner(outR)
	start := time.Now()
	var busy *BusyError
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "locked":
			go l.follow(lines)
			go l.heartbeat()
			return l, nil
		case strings.HasPrefix(line, "busy "):
			busy = &BusyError{Host: c.Name(), Holder: parseHolder(strings.TrimPrefix(line, "busy "))}
			if o.Wait > 0 {
				o.Logf(fmt.Sprintf("waiting up to %s for the lock: %s", o.Wait, busy.Holder))
			}
		case strings.HasPrefix(line, "settling "):
			// Its client is gone: the holder settles what it left and lets
			// go; the script waits for that (bounded) without --lock-wait.
			busy = &BusyError{Host: c.Name(), Holder: parseHolder(strings.TrimPrefix(line, "settling ")), Settling: true}
			o.Logf("waiting for the host to settle an interrupted run: " + busy.Holder.String())
		case strings.HasPrefix(line, "log "):
			o.Logf(strings.TrimPrefix(line, "log "))
		}
	}
	stdinW.Close()
	<-l.done
	if busy != nil {
		if o.Wait > 0 || busy.Settling {
			busy.Waited = time.Since(start).Round(time.Second)
		}
		return nil, busy
	}
	if l.err != nil {
		return nil, fmt.Errorf("host %s: taking the deploy lock: %w", c.Name(), l.err)
	}
	return nil, fmt.Errorf("host %s: taking the deploy lock: the holder ended without an answer", c.Name())
}

func parseHolder(s string) Holder {
	var h Holder
	if json.Unmarshal([]byte(s), &h) != nil || h.Command == "" {
		h.Command = "unknown holder"
	}
	return h
}

// follow reads the holder's reports after "locked".
func (l *Lock) follow(lines *bufio.Scanner) {
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "settled":
			l.settled <- struct{}{}
		case strings.HasPrefix(line, "log "):
			l.opts.Logf(strings.TrimPrefix(line, "log "))
		}
	}
}

// heartbeat tells the holder every second that shipit is alive.
func (l *Lock) heartbeat() {
	every := l.opts.HeartbeatEvery
	if every < 0 {
		return
	}
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			l.mu.Lock()
			closing := l.closing
			l.mu.Unlock()
			if closing {
				return
			}
			if l.send(context.Background(), "hb") != nil {
				return
			}
		}
	}
}

// send writes a line to the holder without blocking past ctx or the end
// of the session (a partitioned connection stops reading).
func (l *Lock) send(ctx context.Context, line string) error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.WriteString(l.stdin, line+"\n")
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return l.LostError()
		}
		return nil
	case <-l.done:
		return l.LostError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lost is closed when the holder's session ends; before Release that means
// the lock is gone (holder killed, connection dropped) and the host settles
// (or settled) the journal without shipit.
func (l *Lock) Lost() <-chan struct{} { return l.done }

// LostError is a run that lost its lock: the host settles it without shipit.
type LostError struct {
	Host string
	Err  error // why the holder's session ended, if known
}

func (e *LostError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("host %s: lost the deploy lock: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("host %s: lost the deploy lock: its holder ended", e.Host)
}

func (e *LostError) Unwrap() error { return e.Err }

// Hint says what happens to the host.
func (e *LostError) Hint() string {
	return "the host settles the interrupted run by itself (`shipit lock status` shows it); the next deploy, rollback, setup or `shipit recover` finishes whatever is left"
}

// Interrupted marks the run as interrupted (not failed) in the audit log.
func (e *LostError) Interrupted() bool { return true }

// LostError says why the session ended.
func (l *Lock) LostError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &LostError{Host: l.conn.Name(), Err: l.err}
}

// Begin starts the journal of a change: meta are its fixed facts (J_OP,
// J_COMPOSE, ...), state the runtime's deploy state; both are written to
// the host before Begin returns.
func (l *Lock) Begin(ctx context.Context, meta, state map[string]string) error {
	l.mu.Lock()
	l.meta = meta
	l.mu.Unlock()
	return l.Record(ctx, state)
}

var keyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Record rewrites the journal with state (it implements runtime.Journal).
func (l *Lock) Record(ctx context.Context, state map[string]string) error {
	l.mu.Lock()
	meta := l.meta
	l.mu.Unlock()
	if meta == nil {
		return errors.New("journal: Record before Begin")
	}
	var b strings.Builder
	// The v2 header promises the "# end" trailer: the host tells a journal
	// a crash cut short from a whole one.
	b.WriteString(journalHeader + "\n")
	// Meta keys become J_OP, J_COMPOSE...; state keys S_release, S_started...
	write := func(prefix string, m map[string]string, upper bool) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !keyRe.MatchString(k) {
				return fmt.Errorf("journal: invalid key %q", k)
			}
			name := k
			if upper {
				name = strings.ToUpper(k)
			}
			fmt.Fprintf(&b, "%s%s=%s\n", prefix, name, shell.Quote(m[k]))
		}
		return nil
	}
	if err := write("J_", meta, true); err != nil {
		return err
	}
	if err := write("S_", state, false); err != nil {
		return err
	}
	b.WriteString(journalEnd + "\n")
	select {
	case <-l.done:
		return l.LostError()
	default:
	}
	// Written by the shell, not SFTP: never once the holder has begun to
	// settle this run (it moves the journal aside first), and 0600 from
	// the first byte. Durable before Record returns: the file is fsynced
	// before the rename and the directory after it, so a host that loses
	// power finds this journal or the previous one, whole.
	j := JournalPath(l.opts.AppPath)
	cmd := "umask 077 && [ ! -e " + shell.Quote(j+".settling") + " ] && cat > " + shell.Quote(j+".tmp") +
		" && " + durable(j+".tmp") + " && mv -f " + shell.Quote(j+".tmp") + " " + shell.Quote(j) +
		" && " + durable(path.Dir(j))
	var errb bytes.Buffer
	code, err := l.conn.Run(ctx, cmd, strings.NewReader(b.String()), io.Discard, &errb)
	if err == nil && code != 0 {
		err = remote.Failed(l.conn.Name(), "write the journal", code, errb.String(), "")
	}
	if err != nil {
		return fmt.Errorf("host %s: writing the journal (the deploy lock may be lost): %w", l.conn.Name(), err)
	}
	l.mu.Lock()
	l.journal = true
	l.mu.Unlock()
	return nil
}

const (
	journalHeader = "# shipit journal v2: the change in flight on this host (see `shipit lock status`)."
	journalEnd    = "# end"
)

// durable is a shell command that fsyncs p (a file, or a directory after a
// rename in it) where sync(1) takes arguments (coreutils 8.24+, busybox),
// and does nothing, successfully, elsewhere.
func durable(p string) string {
	return "{ sync -- " + shell.Quote(p) + " 2>/dev/null || :; }"
}

// Settle asks the holder to settle the journal now (undo, or complete past
// the point of no return) and waits until it has.
func (l *Lock) Settle(ctx context.Context) error {
	select {
	case <-l.done:
		return l.LostError()
	default:
	}
	if err := l.send(ctx, "settle"); err != nil {
		return err
	}
	select {
	case <-l.settled:
		l.mu.Lock()
		l.journal = false
		l.mu.Unlock()
		return nil
	case <-l.done:
		return l.LostError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release lets the lock go and waits for the holder to end. After a
// completed run (done) the journal is simply removed; otherwise the holder
// settles it first.
func (l *Lock) Release(ctx context.Context, done bool) {
	l.mu.Lock()
	pending := l.journal
	l.mu.Unlock()
	if pending && done {
		if _, err := remote.Output(ctx, l.conn, "rm -rf "+shell.Join(JournalPath(l.opts.AppPath), path.Join(l.opts.AppPath, Dir, "env.undo"))+
			" && "+durable(path.Join(l.opts.AppPath, Dir))); err == nil {
			pending = false
		}
	}
	if pending {
		_ = l.Settle(ctx)
	}
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.stdin.Close()
	select {
	case <-l.done:
	case <-ctx.Done():
	}
}

// Guard is a shell prefix that refuses to run a command once the journal
// is gone: after the holder settled without shipit (a partition that
// healed), nothing shipit still sends may change the host.
func Guard(appPath string) string {
	return "[ -e " + shell.Quote(JournalPath(appPath)) +
		" ] || { echo 'shipit: the host settled this run without shipit (the deploy lock was lost); refusing to continue' >&2; exit 97; }; "
}

// Status is what `shipit lock status` shows of one host. Held is what
// flock(1) says on the host, never a pid read from a file.
type Status struct {
	Held      bool
	Holder    Holder
	Heartbeat time.Duration // since the holder's last heartbeat
	Journal   string        // the operation of a journal left on the host, "" if none
	// Stale is a holder file whose holder is gone without the lock (a
	// reboot, an OOM kill); Holder is what it says.
	Stale   bool
	Corrupt []string // journals the host could not settle, kept aside for inspection
}

// ReadStatus reports the lock of the app at appPath.
func ReadStatus(ctx context.Context, c remote.Conn, appPath string) (Status, error) {
	out, err := remote.Output(ctx, c, command("status", appPath))
	if err != nil {
		return Status{}, err
	}
	var st Status
	for _, line := range strings.Split(out, "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "held":
			st.Held, st.Holder = true, parseHolder(rest)
		case "stale":
			st.Stale, st.Holder = true, parseHolder(rest)
		case "corrupt":
			st.Corrupt = append(st.Corrupt, strings.TrimSpace(rest))
		case "heartbeat":
			if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
				st.Heartbeat = time.Duration(n) * time.Second
			}
		case "journal":
			st.Journal = strings.Trim(strings.TrimSpace(rest), "'")
		}
	}
	return st, nil
}

// Killed says what Kill did.
type Killed struct {
	Signalled int  // the holder's pid, signalled (0: none)
	Stale     bool // no holder held the lock; its stale holder file was removed
}

// UnverifiedError is a lock held by a process the holder file does not
// name: Kill signals nothing rather than a pid it cannot trust.
type UnverifiedError struct {
	Host   string
	Holder Holder
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("host %s: the deploy lock is held, but not by the process its holder file names (%s): nothing signalled", e.Host, e.Holder)
}

func (e *UnverifiedError) Hint() string {
	return "a holder may be starting right now: run `shipit lock status` again; if it persists, find the process holding the app's .shipit/lock on the host (fuser or lsof)"
}

// Kill asks the holder of the app's lock to settle and end (SIGTERM). It
// signals a pid only when that process holds the lock (flock held, and
// the pid has the lock file open), never a pid from the holder file alone:
// after a reboot that pid may belong to anything. A stale holder file is
// removed.
func Kill(ctx context.Context, c remote.Conn, appPath string) (Killed, error) {
	out, err := remote.Output(ctx, c, command("kill", appPath))
	if err != nil {
		return Killed{}, err
	}
	var k Killed
	for _, line := range strings.Split(out, "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "signalled":
			k.Signalled, _ = strconv.Atoi(strings.TrimSpace(rest))
		case "stale":
			k.Stale = true
		case "unverified":
			return k, &UnverifiedError{Host: c.Name(), Holder: parseHolder(rest)}
		}
	}
	return k, nil
}
