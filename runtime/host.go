package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/shipit-dev/shipit/internal/remote"
)

// Host is what a recipe knows about the host it runs on. One Host belongs
// to one goroutine and one Lua state.
type Host struct {
	Conn            remote.Conn
	Name            string // as written in shipit.toml
	Stage           string
	App             string
	AppPath         string // deploy_to/app
	Release         string
	PreviousRelease string
	Primary         bool              // the stage's primary host (once-per-stage hooks run here)
	Params          map[string]string // task parameters; nil: the Env's
	// Coordinator synchronizes this host with the others of its batch
	// (barriers, once hooks); nil: it runs on its own.
	Coordinator Coordinator

	ctx    context.Context
	env    *Env
	stepMu sync.Mutex // step is read by events from other goroutines (the lock holder's reports)
	step   string

	cacheMu sync.Mutex
	cache   map[slotKey]*memoEntry // per-host values of modules (HostSlot)
	defers  []func()
	report  []ReportItem
	journal Journal
	guardMu sync.Mutex                               // guards guard and check
	guard   string                                   // shell prefix of every command (see SetGuard)
	check   func() error                             // asked before anything is sent (see SetGuard)
	verify  func(context.Context, remote.Conn) error // what an SFTP write asks of the host first (see SetWriteGuard)
	guarded bool                                     // Conn is wrapped by a guardedConn
	abort   context.CancelCauseFunc                  // cancels the running task
	prevSet bool                                     // PreviousRelease was assigned during this run
	failed  bool                                     // the task failed (set before its on_failure hooks run)
	trace   *traceStats                              // with Env.Trace: what the traced connection measured
}

// Failed reports whether the host's task failed; Defer'd functions use it
// to tell a completed run from an interrupted one.
func (h *Host) Failed() bool {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	return h.failed
}

// SetGuard makes every later command run behind prefix, a shell test that
// exits non-zero when the command must not run, and asks check (may be
// nil) before anything is sent to the host at all ("", nil removes it).
// Every remote operation of a recipe or a builtin goes through h.Conn, so
// none escapes it.
func (h *Host) SetGuard(prefix string, check func() error) {
	h.guardMu.Lock()
	h.guard, h.check = prefix, check
	h.guardMu.Unlock()
}

// SetWriteGuard is how an SFTP write asks the guard, which it cannot run
// behind: verify reads on the host what the prefix tests, without a
// command (a command costs a session and a login shell, an SFTP read a
// millisecond). Without one, a write runs the prefix as a command first.
func (h *Host) SetWriteGuard(verify func(ctx context.Context, c remote.Conn) error) {
	h.guardMu.Lock()
	h.verify = verify
	h.guardMu.Unlock()
}

func (h *Host) writeGuard() func(context.Context, remote.Conn) error {
	h.guardMu.Lock()
	defer h.guardMu.Unlock()
	return h.verify
}

// GuardPrefix is the shell test every command runs behind now ("" when no
// lock is held): a command that must test it again later (after waiting
// for the holder's mutex, internal/lifecycle) runs it itself.
func (h *Host) GuardPrefix() string {
	p, _ := h.guardOf()
	return p
}

// guardOf is the host's guard now.
func (h *Host) guardOf() (string, func() error) {
	h.guardMu.Lock()
	defer h.guardMu.Unlock()
	return h.guard, h.check
}

// setStep names the step running now and returns the previous one.
func (h *Host) setStep(step string) string {
	h.stepMu.Lock()
	defer h.stepMu.Unlock()
	prev := h.step
	h.step = step
	return prev
}

// Abort stops the running task on this host with cause (its on_failure
// hooks still run).
func (h *Host) Abort(cause error) {
	h.cacheMu.Lock()
	abort := h.abort
	h.cacheMu.Unlock()
	if abort != nil {
		abort(cause)
	}
}

// Journal records a host's in-flight change on the host itself, so that
// it can be undone or completed even when shipit dies (see hostlock).
type Journal interface {
	Record(ctx context.Context, state map[string]string) error
}

// SetJournal makes the host record every contract mark in j.
func (h *Host) SetJournal(j Journal) { h.journal = j }

// ReportItem is one line of a task's structured report: a doctor check, a
// setup item. Commands decide exit codes from these values, never from
// printed text.
type ReportItem struct {
	Status string // ReportOK, ReportChanged, ReportWarn or ReportFail
	Item   string // what was looked at, e.g. "docker engine"
	Detail string
	Fix    string // for warn and fail: what to do
}

// Report statuses.
const (
	ReportOK      = "ok"
	ReportChanged = "changed"
	ReportWarn    = "warn"
	ReportFail    = "fail"
)

// AddReport records it and shows it live.
func (h *Host) AddReport(it ReportItem) {
	h.cacheMu.Lock()
	h.report = append(h.report, it)
	h.cacheMu.Unlock()
	h.Emit(Event{Kind: Report, Item: &it})
}

// Report returns what the host's run reported, in order.
func (h *Host) Report() []ReportItem {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	return append([]ReportItem(nil), h.report...)
}

// Defer registers fn to run when the host's run ends (after on_failure
// hooks), e.g. to release a remote lock.
func (h *Host) Defer(fn func()) {
	h.cacheMu.Lock()
	defer h.cacheMu.Unlock()
	h.defers = append(h.defers, fn)
}

// Finish runs the deferred functions, last registered first.
func (h *Host) Finish() {
	h.cacheMu.Lock()
	ds := h.defers
	h.defers = nil
	h.cacheMu.Unlock()
	for i := len(ds) - 1; i >= 0; i-- {
		ds[i]()
	}
}

// Context is the context the current step runs under.
func (h *Host) Context() context.Context {
	if h.ctx == nil {
		return context.Background()
	}
	return h.ctx
}

// ReleasePath is app_path/releases/<release>.
func (h *Host) ReleasePath() string {
	if h.Release == "" {
		return ""
	}
	return path.Join(h.AppPath, "releases", h.Release)
}

// memo returns the cached value for key, computing it once per host
// (modules use it through a HostSlot). Each key has its own lock: a slot
// that computes (a command on the host) holds up only that slot's callers.
func (h *Host) memo(key slotKey, fn func() (any, error)) (any, error) {
	h.cacheMu.Lock()
	if h.cache == nil {
		h.cache = map[slotKey]*memoEntry{}
	}
	e := h.cache[key]
	if e == nil {
		e = &memoEntry{}
		h.cache[key] = e
	}
	h.cacheMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return e.v, nil
	}
	v, err := fn()
	if err != nil {
		return nil, err
	}
	e.v, e.done = v, true
	return v, nil
}

// memoEntry is one slot's value on a host, once computed.
type memoEntry struct {
	mu   sync.Mutex
	done bool
	v    any
}

// Emit reports an event for this host.
func (h *Host) Emit(e Event) {
	e.Host = h.Name
	if e.Step == "" {
		h.stepMu.Lock()
		e.Step = h.step
		h.stepMu.Unlock()
	}
	h.env.emit(e)
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// RunOpts tune Exec.
type RunOpts struct {
	Stdin io.Reader
	Quiet bool // don't echo the command with -v (used for polling loops)
}

// Exec runs cmd on the host and returns its output. A non-zero exit is a
// *remote.CommandError unless allowFail. Output lines are streamed as events with -v.
func (h *Host) Exec(cmd string, allowFail bool, o RunOpts) (Result, error) {
	if !o.Quiet {
		h.Emit(Event{Kind: Command, Text: cmd})
	}
	var stdout, stderr bytes.Buffer
	var outW, errW io.Writer = &stdout, &stderr
	if h.env.Verbose && !o.Quiet {
		outW = io.MultiWriter(&stdout, &lineEmitter{h: h})
		errW = io.MultiWriter(&stderr, &lineEmitter{h: h})
	}
	code, err := h.Conn.Run(h.Context(), cmd, o.Stdin, outW, errW)
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
	if err != nil {
		return res, fmt.Errorf("host %s: %s: %w", h.Name, cmd, err)
	}
	if code != 0 && !allowFail {
		return res, remote.Failed(h.Name, cmd, code, res.Stderr, res.Stdout)
	}
	return res, nil
}

// Put writes content to p on the host atomically.
func (h *Host) Put(p string, content []byte, mode os.FileMode) error {
	h.Emit(Event{Kind: Command, Text: fmt.Sprintf("put %s (%d bytes, %04o)", p, len(content), mode)})
	return h.Conn.WriteFile(h.Context(), p, bytes.NewReader(content), int64(len(content)), mode)
}

// lineEmitter turns written bytes into Output events, one per line.
type lineEmitter struct {
	h   *Host
	buf []byte
}

func (w *lineEmitter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.h.Emit(Event{Kind: Output, Text: string(w.buf[:i])})
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
