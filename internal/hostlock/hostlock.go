// Package hostlock keeps one deploy, rollback or setup of an app on a host
// at a time, and makes sure an interrupted one never leaves the host half
// switched.
//
// The lock is flock(1) held by a small sh process on the host (host.sh,
// sent inline) whose stdin is shipit's SSH session (on a connection of its
// own when it can). Before each point where the host changes, shipit sends
// the journal of the change in flight over that session; the holder, the
// journal's only writer, writes it and acknowledges it. shipit sends a
// heartbeat every second and the holder answers it. When the session ends
// (shipit killed, connection cut) or the heartbeat stops (a silent
// partition, a frozen shipit), the holder settles the journal itself —
// undoes the change, or completes it past its point of no return — and
// only then lets the lock go; from then on it refuses the run's marks, and
// its commands fail the run's Guard. shipit gives the host up sooner
// (ClientTimeout < HeartbeatTimeout) and then sends nothing more. Every
// command that takes the lock first settles whatever an earlier run left
// (a host that rebooted mid-deploy).
package hostlock

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shipit-dev/shipit/internal/lifecycle"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/sshpool"
)

//go:embed host.sh
var holderScript string

// hostScript is what runs on the host: the release lifecycle's functions
// (internal/lifecycle: the one implementation of drain, stop, switch and
// write-lock), then the holder.
var hostScript = lifecycle.Functions + "\n" + holderScript

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
	// ClientTimeout: shipit gives the host up after this long without an
	// answered heartbeat, and sends nothing more (default 10s). It is
	// shorter than HeartbeatTimeout, so shipit learns it lost the host
	// before the host acts on a lost client.
	ClientTimeout time.Duration
	Logf          func(string) // what the holder reports (settling, backstop, waiting)
}

// Timings in effect when an Options field is zero (docs/deploys.md).
const (
	DefaultHeartbeatEvery   = time.Second
	DefaultClientTimeout    = 10 * time.Second
	DefaultHeartbeatTimeout = 15 * time.Second
)

// Lock is a held lock.
type Lock struct {
	conn    remote.Conn // the caller's connection
	hold    remote.Conn // the holder's session runs here (its own connection when it can)
	closeFn func()      // closes hold when it is a connection of its own
	opts    Options
	run     string // this run's id on the host (the epoch file)
	stdin   *io.PipeWriter
	wmu     sync.Mutex // one writer of the holder's stdin at a time

	mu       sync.Mutex
	meta     map[string]string
	journal  bool // a journal was written and not yet settled
	seq      int
	acks     map[int]chan string // "" for ack, else why the holder refused
	lastAck  time.Time           // the holder last answered a heartbeat
	gaveUp   error               // why shipit gave the host up, if it did
	outcome  string              // what the host did without shipit ("undid the deploy of ...")
	settled  chan struct{}       // one value per "settled" line
	done     chan struct{}       // the holder's session ended
	followed chan struct{}       // every line the holder said has been read
	told     chan struct{}       // closed when the holder said what it did ("outcome")
	waited   chan struct{}       // closed once a shipit that gave up waited for the outcome
	lost     chan struct{}       // closed when done closes or shipit gives the host up
	lostOnce sync.Once
	err      error // why the session ended
	closing  bool
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
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.HeartbeatEvery == 0 {
		o.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if o.ClientTimeout <= 0 {
		o.ClientTimeout = min(DefaultClientTimeout, o.HeartbeatTimeout*2/3)
	}
	if o.Logf == nil {
		o.Logf = func(string) {}
	}
	hold, closeFn := separate(ctx, c)
	l, err := acquire(ctx, c, hold, o)
	var busy *BusyError
	if errors.As(err, &busy) && o.Wait == 0 && !busy.Settling && goneHere(busy.Holder, o.Holder) {
		// The user retries right after an interrupted run, before the host
		// noticed that its client went away: queue behind the settle.
		o.Logf("the shipit that held the lock (pid " + strconv.Itoa(busy.Holder.PID) + " on this machine) is gone; waiting for the host to settle its run")
		o.Wait = o.HeartbeatTimeout + settleWait
		l, err = acquire(ctx, c, hold, o)
		if errors.As(err, &busy) {
			busy.Settling = true
		}
	}
	if err != nil {
		closeFn()
		return nil, err
	}
	l.closeFn = closeFn
	return l, nil
}

// separate is a connection of its own for the holder's session, when c
// (or the connection it wraps) can dial one: heartbeats then never queue
// behind layer uploads on c's TCP stream. Otherwise c itself.
func separate(ctx context.Context, c remote.Conn) (remote.Conn, func()) {
	for inner := c; inner != nil; {
		if s, ok := inner.(interface {
			Separate(context.Context) (*sshpool.Client, error)
		}); ok {
			if sc, err := s.Separate(ctx); err == nil {
				return sc, func() { _ = sc.Close() }
			}
			break // the holder shares c: slower heartbeats, same safety
		}
		u, ok := inner.(interface{ Unwrap() remote.Conn })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	for {
		u, ok := c.(interface{ Unwrap() remote.Conn })
		if !ok {
			return c, func() {}
		}
		c = u.Unwrap() // the holder's own traffic is never behind a run's guard
	}
}

// goneHere reports whether holder was started by this user on this machine
// by a process that no longer runs.
func goneHere(holder, self Holder) bool {
	if holder.User != self.User || holder.PID <= 0 || holder.PID == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(holder.PID, 0), syscall.ESRCH)
}

// newRunID names this run on the host (hostlock.Guard's epoch).
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func acquire(ctx context.Context, c, hold remote.Conn, o Options) (*Lock, error) {
	o.Holder.HolderPID = 0 // host.sh fills it in
	holder, _ := json.Marshal(o.Holder)
	run := newRunID()
	cmd := command("hold", o.AppPath, o.App, o.Stage, strconv.Itoa(int(o.Wait.Seconds())),
		strconv.Itoa(int(o.HeartbeatTimeout.Seconds())), string(holder), run)
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	var errb bytes.Buffer
	l := &Lock{conn: c, hold: hold, closeFn: func() {}, opts: o, run: run, stdin: stdinW, acks: map[int]chan string{},
		settled: make(chan struct{}, 8), done: make(chan struct{}), lost: make(chan struct{}), followed: make(chan struct{}), told: make(chan struct{}), waited: make(chan struct{})}
	// The lock outlives a cancelled step: after Ctrl-C it is held until the
	// undo has run, then released.
	sessCtx := context.WithoutCancel(ctx)
	go func() {
		code, err := hold.Run(sessCtx, cmd, stdinR, outW, &errb)
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
			l.lastAck = time.Now()
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
		case line == "noflock":
			stdinW.Close()
			<-l.done
			return nil, &NoFlockError{Host: c.Name()}
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
	defer func() {
		close(l.followed)
		<-l.done
		l.loseOnce()
	}()
	for lines.Scan() {
		line := lines.Text()
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "settled":
			l.settled <- struct{}{}
		case "log":
			l.opts.Logf(rest)
		case "hb":
			if rest == "ok" {
				l.mu.Lock()
				l.lastAck = time.Now()
				l.mu.Unlock()
			} else {
				l.giveUp(fmt.Errorf("the host could not record a heartbeat: %s", strings.TrimPrefix(rest, "failed ")))
			}
		case "ack", "nack":
			seq, why, _ := strings.Cut(rest, " ")
			n, _ := strconv.Atoi(seq)
			if key == "nack" && why == "" {
				why = "refused"
			}
			if key == "ack" {
				why = ""
			}
			l.mu.Lock()
			ch := l.acks[n]
			delete(l.acks, n)
			l.mu.Unlock()
			if ch != nil {
				ch <- why
			}
		case "outcome":
			l.mu.Lock()
			first := l.outcome == ""
			l.outcome = rest
			l.mu.Unlock()
			if first {
				close(l.told)
			}
		}
	}
}

func (l *Lock) loseOnce() { l.lostOnce.Do(func() { close(l.lost) }) }

// giveUp stops this run from sending anything more to the host: the host
// settles it (the holder sees its input end, or no heartbeat).
func (l *Lock) giveUp(why error) {
	l.mu.Lock()
	if l.gaveUp == nil && !l.closing {
		l.gaveUp = why
	}
	first := l.gaveUp == why
	l.mu.Unlock()
	if first {
		// Whoever asks next waits (once, for all) for the holder's last
		// words: a thawed shipit has them waiting, to say what the host did.
		go func() {
			l.WaitOutcome(outcomeWait)
			close(l.waited)
		}()
		l.stdin.CloseWithError(why)
		l.loseOnce()
	}
}

// lostError is LostError after the wait for the outcome, when shipit gave
// the host up.
func (l *Lock) lostError() error {
	l.mu.Lock()
	gaveUp := l.gaveUp != nil
	l.mu.Unlock()
	if gaveUp {
		<-l.waited
	}
	return l.LostError()
}

// heartbeat tells the holder every HeartbeatEvery that shipit is alive,
// and gives the host up when the holder stops answering for ClientTimeout.
func (l *Lock) heartbeat() {
	every := l.opts.HeartbeatEvery
	if every < 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.lost:
			return
		case <-t.C:
			l.mu.Lock()
			closing := l.closing
			l.mu.Unlock()
			if closing {
				return
			}
			if err := l.Check(); err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := l.send(ctx, "hb")
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return
			}
		}
	}
}

// Check returns a *LostError once this run must not send anything more to
// the host: the holder's session ended, or no heartbeat was answered for
// ClientTimeout (the host will settle the run: a frozen or partitioned
// shipit that comes back must not race it).
func (l *Lock) Check() error {
	select {
	case <-l.lost:
		return l.lostError()
	default:
	}
	if l.opts.HeartbeatEvery < 0 {
		return nil
	}
	l.mu.Lock()
	since := time.Since(l.lastAck)
	l.mu.Unlock()
	if since > l.opts.ClientTimeout {
		l.giveUp(fmt.Errorf("no heartbeat answered for %s (the host settles the run after %s without one)",
			since.Round(time.Second), l.opts.HeartbeatTimeout))
		return l.lostError()
	}
	return nil
}

// send writes lines to the holder at once without blocking past ctx or
// the end of the session (a partitioned connection stops reading).
func (l *Lock) send(ctx context.Context, lines ...string) error {
	errc := make(chan error, 1)
	go func() {
		l.wmu.Lock()
		defer l.wmu.Unlock()
		_, err := io.WriteString(l.stdin, strings.Join(lines, "\n")+"\n")
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return l.lostError()
		}
		return nil
	case <-l.lost:
		return l.lostError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request sends lines ending with a numbered request and waits for the
// holder's answer to it.
func (l *Lock) request(ctx context.Context, what string, lines ...string) error {
	if err := l.Check(); err != nil {
		return err
	}
	ch := make(chan string, 1)
	l.mu.Lock()
	l.seq++
	n := l.seq
	l.acks[n] = ch
	l.mu.Unlock()
	if err := l.send(ctx, append(lines, what+" "+strconv.Itoa(n))...); err != nil {
		return err
	}
	select {
	case why := <-ch:
		if why == "" {
			return nil
		}
		if st, _, _ := strings.Cut(why, " "); st != "live" && st != "closed" && !strings.HasPrefix(why, "cannot") {
			// The holder gave this run up (it is "settling", "settled" or
			// "ended"): send nothing more, and report what the host did.
			l.giveUp(fmt.Errorf("the holder refused the journal: the run is %s", why))
			return l.lostError()
		}
		return fmt.Errorf("host %s: the lock holder refused: %s", l.conn.Name(), why)
	case <-l.lost:
		return l.lostError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lost is closed when the holder's session ends, or when shipit gave the
// host up (no heartbeat answered in time); before Release that means the
// lock is gone and the host settles (or settled) the journal without shipit.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// LostError is a run that lost its lock: the host settles it without shipit.
type LostError struct {
	Host    string
	Err     error  // why the holder's session ended, if known
	Outcome string // what the host did, when it said ("undid the deploy of ...")
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("host %s: lost the deploy lock: its holder ended", e.Host)
	if e.Err != nil {
		s = fmt.Sprintf("host %s: lost the deploy lock: %v", e.Host, e.Err)
	}
	if e.Outcome != "" {
		s += "; the host settled this run without shipit: it " + e.Outcome + ". Nothing else is needed on that host"
	}
	return s
}

func (e *LostError) Unwrap() error { return e.Err }

// Hint says what happens to the host.
func (e *LostError) Hint() string {
	if e.Outcome != "" {
		return "the host is consistent (`shipit lock status` shows it); deploy again when ready"
	}
	return "the host settles the interrupted run by itself (`shipit lock status` shows it); the next deploy, rollback, setup or `shipit recover` finishes whatever is left"
}

// Interrupted marks the run as interrupted (not failed) in the audit log.
func (e *LostError) Interrupted() bool { return true }

// LostError says why the session ended, or why shipit gave the host up,
// and what the host did about it when it said so.
func (l *Lock) LostError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	if l.gaveUp != nil {
		err = l.gaveUp
	}
	return &LostError{Host: l.conn.Name(), Err: err, Outcome: l.outcome}
}

// outcomeWait bounds how long a shipit that gave the host up waits for the
// holder's last words (already sent when the host settled while shipit was
// frozen: they come at once, but a loaded machine was seen to take over 5 s
// to read them; a holder that is still settling ends its session first).
const outcomeWait = 15 * time.Second

// WaitOutcome waits up to d for the holder's session to end after the lock
// was lost, so that LostError can say what the host did.
func (l *Lock) WaitOutcome(d time.Duration) {
	select {
	case <-l.told:
	case <-l.followed:
	case <-time.After(d):
	}
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
// The holder writes it (the one writer of the journal while it holds the
// lock), fsynced, and acknowledges it before Record returns; once the
// holder has settled the run it refuses, and Record returns a *LostError.
func (l *Lock) Record(ctx context.Context, state map[string]string) error {
	l.mu.Lock()
	meta := l.meta
	l.mu.Unlock()
	if meta == nil {
		return errors.New("journal: Record before Begin")
	}
	body, err := journalText(meta, state)
	if err != nil {
		return err
	}
	lines := []string{"jb"}
	for _, s := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		lines = append(lines, "j "+s)
	}
	if err := l.request(ctx, "jc", lines...); err != nil {
		var lost *LostError
		if errors.As(err, &lost) {
			return err // it names the host and says what happened to the run
		}
		return fmt.Errorf("host %s: writing the journal: %w", l.conn.Name(), err)
	}
	l.mu.Lock()
	l.journal = true
	l.mu.Unlock()
	return nil
}

// journalText is the journal of meta and state, as host.sh sources it.
func journalText(meta, state map[string]string) (string, error) {
	var b strings.Builder
	// The v2 header promises the "# end" trailer: the host tells a journal
	// a crash cut short from a whole one.
	b.WriteString(journalHeader + "\n")
	// Meta keys become J_OP, J_COMPOSE...; state keys S_release, S_started...
	write := func(prefix string, m map[string]string, upper bool) error {
		keys := slices.Sorted(maps.Keys(m))
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
		return "", err
	}
	if err := write("S_", state, false); err != nil {
		return "", err
	}
	b.WriteString(journalEnd + "\n")
	return b.String(), nil
}

const (
	journalHeader = "# shipit journal v2: the change in flight on this host (see `shipit lock status`)."
	journalEnd    = "# end"
)

// Settle asks the holder to settle the journal now (undo, or complete past
// the point of no return) and waits until it has.
func (l *Lock) Settle(ctx context.Context) error {
	if err := l.Check(); err != nil {
		return err
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
	case <-l.lost:
		return l.lostError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release lets the lock go and waits for the holder to end. After a
// completed run (done) the holder forgets the journal; otherwise it
// settles it first.
func (l *Lock) Release(ctx context.Context, done bool) {
	defer l.closeFn()
	l.mu.Lock()
	pending := l.journal
	l.mu.Unlock()
	if pending && done {
		if l.request(ctx, "done") == nil {
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

// Guard is a shell prefix that refuses to run a command unless this run
// may still change the host: the holder has not given it up (the epoch
// file names this run, live). After the holder settled without shipit (a
// partition that healed, a frozen shipit thawed), or once another run took
// the lock, nothing this shipit still sends changes the host.
func (l *Lock) Guard() string { return Guard(l.opts.AppPath, l.run) }

// Verify is Guard's test made by reading the epoch file (SFTP where the
// connection can) instead of running a command: what an upload asks first.
func (l *Lock) Verify(ctx context.Context, c remote.Conn) error {
	b, err := remote.ReadFile(ctx, c, path.Join(l.opts.AppPath, Dir, "epoch"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f := strings.Fields(string(b))
	if len(f) >= 2 && f[1] == l.run && (f[0] == "live" || f[0] == "closed") {
		return nil
	}
	what := strings.Join(f, " ")
	if len(f) > 2 {
		what = strings.Join(f[2:], " ")
	}
	return fmt.Errorf("shipit: the host settled this run without shipit (the deploy lock was lost; the host: %s); refusing to continue", what)
}

// GuardExit is the exit status of a command Guard refused.
const GuardExit = 97

// Guard is Lock.Guard for the run named run of the app at appPath.
func Guard(appPath, run string) string {
	epoch := shell.Quote(path.Join(appPath, Dir, "epoch"))
	return "{ read -r _st _id _w <" + epoch + " && [ \"$_id\" = " + shell.Quote(run) +
		" ] && { [ \"$_st\" = live ] || [ \"$_st\" = closed ]; }; } 2>/dev/null || " +
		"{ echo \"shipit: the host settled this run without shipit (the deploy lock was lost; the host: ${_w:-$_st}); refusing to continue\" >&2; exit " +
		strconv.Itoa(GuardExit) + "; }; "
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
