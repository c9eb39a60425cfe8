package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
)

// A trace (--trace) shows where a run's time goes: every remote operation
// with its duration, whoever makes it (a step's h:run or a builtin), and
// per step the time spent waiting on the host against the time spent here
// (Lua, compression, sleeps). It wraps the host's connection, so nothing
// that reaches the host escapes it.

// guardEnd ends hostlock.Guard's prefix: the trace shows what follows it.
const guardEnd = "refusing to continue' >&2; exit 97; }; "

// traceStats is what a host's traced connection measured so far.
type traceStats struct {
	calls atomic.Int64
	nanos atomic.Int64
}

// tracedConn is a remote.Conn that reports each operation's duration.
type tracedConn struct {
	remote.Conn
	h     *Host
	stats *traceStats
}

func (c *tracedConn) done(what string, start time.Time) {
	d := time.Since(start)
	c.stats.calls.Add(1)
	c.stats.nanos.Add(int64(d))
	what = strings.Join(strings.Fields(what), " ")
	if _, cmd, ok := strings.Cut(what, guardEnd); ok {
		what = "(guarded) " + cmd
	}
	if len(what) > 120 {
		what = what[:117] + "..."
	}
	c.h.Emit(Event{Kind: Info, Text: fmt.Sprintf("trace %8s  %s", roundTrace(d), what)})
}

func (c *tracedConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	defer c.done(cmd, time.Now())
	return c.Conn.Run(ctx, cmd, stdin, stdout, stderr)
}

func (c *tracedConn) WriteFile(ctx context.Context, p string, r io.Reader, size int64, mode os.FileMode) error {
	defer c.done(fmt.Sprintf("put %s (%d bytes)", p, size), time.Now())
	return c.Conn.WriteFile(ctx, p, r, size, mode)
}

func (c *tracedConn) Exists(ctx context.Context, p string) (bool, error) {
	defer c.done("exists "+p, time.Now())
	return c.Conn.Exists(ctx, p)
}

// Unwrap is the traced connection.
func (c *tracedConn) Unwrap() remote.Conn { return c.Conn }

// ReadFile, ReadDir, DialContext and RunPTY are the optional abilities of the
// wrapped connection (sshpool's), kept visible through the wrapper.
func (c *tracedConn) ReadFile(ctx context.Context, p string) ([]byte, error) {
	defer c.done("read "+p, time.Now())
	return remote.ReadFile(ctx, c.Conn, p)
}

func (c *tracedConn) ReadDir(ctx context.Context, p string) ([]string, error) {
	defer c.done("list "+p, time.Now())
	return remote.ReadDir(ctx, c.Conn, p)
}

func (c *tracedConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d, err := dialerOf(c.Conn)
	if err != nil {
		return nil, err
	}
	defer c.done("dial "+addr, time.Now())
	return d.DialContext(ctx, network, addr)
}

func (c *tracedConn) RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error) {
	p, err := ptyOf(c.Conn)
	if err != nil {
		return 0, err
	}
	defer c.done(cmd, time.Now())
	return p.RunPTY(ctx, cmd, stdin, stdout, term, w, h, resize)
}

// traceStep reports a finished step's time on the host against here.
func (h *Host) traceStep(step string, elapsed time.Duration, calls0, nanos0 int64) {
	if h.trace == nil {
		return
	}
	calls := h.trace.calls.Load() - calls0
	remoteT := time.Duration(h.trace.nanos.Load() - nanos0)
	h.Emit(Event{Kind: Info, Text: fmt.Sprintf("trace %s %s = on the host %s (%d operations) + here %s",
		step, elapsed.Round(time.Millisecond), remoteT.Round(time.Millisecond), calls, max(elapsed-remoteT, 0).Round(time.Millisecond))})
}

// traceMark is the host's counters now (zero without a trace).
func (h *Host) traceMark() (int64, int64) {
	if h.trace == nil {
		return 0, 0
	}
	return h.trace.calls.Load(), h.trace.nanos.Load()
}

// roundTrace keeps three significant digits: 1.44s, 51.2ms, 200µs.
func roundTrace(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
