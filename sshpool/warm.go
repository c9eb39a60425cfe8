package sshpool

// The warm shell (issue 19): sshd runs every exec session's command through
// the user's login shell, whose start-up (~/.bashrc, `pyenv init`...) can cost
// hundreds of milliseconds per command. A pooled Client keeps one exec session
// open running a small POSIX-sh loop, started once through the login shell,
// that runs each command it is sent in a subshell, so commands still run in
// the login shell's environment, without paying its start-up again.
//
// Protocol, one line per command on the session's stdin:
//
//	NONCE SP ESCAPED-COMMAND LF
//
// where ESCAPED-COMMAND is the command with '\' doubled and control bytes as
// \0ooo (decoded by printf %b, so it holds newlines and any byte but NUL). The
// server answers "NONCE+" LF on stdout and on stderr before it starts the
// command (bytes before it are strays, e.g. from a background job of an
// earlier command, and dropped), then the command's own output, then
// "NONCE=CODE" LF on both. NONCE is random per command, so output can never
// be mistaken for a marker.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// WarmEnv turns the warm shell off when set to "0": every command then opens
// its own session, as before (a benchmark baseline; hosts that misbehave).
const WarmEnv = "SHIPIT_SSH_WARM"

const (
	// maxWarmCmd: the server reads a command byte by byte (sh's read), so a
	// bigger one is cheaper as its own session.
	maxWarmCmd = 32 << 10
	// maxWarmFailures: a Client whose warm shells keep failing stops trying.
	maxWarmFailures  = 3
	warmStartTimeout = 15 * time.Second
	// warmKillWait bounds how long a cancelled Run waits for the kill of its
	// remote command, as the session path bounds its wait for output.
	warmKillWait = 2 * time.Second
)

// warmServer is the loop, in syntax dash, bash and zsh all accept. Each
// command runs in a subshell with stdin /dev/null, so it never reads the next
// ones and its cd, exports and exit end with it. Where setsid -w exists
// (util-linux) the subshell reports its pid (/proc/self/stat: read is a
// builtin) and execs "setsid -w $SHELL -c CMD": the user's login shell, as
// sshd would run it, with the server's environment, as a process group of its
// own that a cancel kills whole without touching anything else. Otherwise the
// command is eval'd in the subshell, in the server's process group (and its
// $$ is the server's: `kill $$` would end the warm shell, not the command,
// and the Run fails instead of returning 143). The
// server's own stderr is /dev/null (the session's is fd 3): bash would say
// "Terminated" there about a command killed by a signal, which a session
// of its own does not.
const warmServer = `__shipit_h=%s
exec 3>&2 2>/dev/null
__shipit_s=; %s </dev/null >/dev/null 2>&1 && __shipit_s=1
printf '%%s=%%s\n' "$__shipit_h" "$$"; printf '%%s+\n' "$__shipit_h" >&3
while IFS= read -r __shipit_l; do
__shipit_n=${__shipit_l%%%% *}
( __shipit_c=$(printf '%%b.' "${__shipit_l#* }"); __shipit_c=${__shipit_c%%.}
__shipit_p=; [ -n "$__shipit_s" ] && read -r __shipit_p __shipit_x </proc/self/stat 2>/dev/null
printf '%%s+%%s\n' "$__shipit_n" "$__shipit_p"; printf '%%s+\n' "$__shipit_n" >&2
[ -n "$__shipit_p" ] && exec setsid -w "${SHELL:-/bin/sh}" -c "$__shipit_c"
unset __shipit_l __shipit_n __shipit_h __shipit_s __shipit_p __shipit_x; eval "$__shipit_c" ) </dev/null 2>&3 3>&-
__shipit_r=$?
printf '%%s=%%s\n' "$__shipit_n" "$__shipit_r" >&3; printf '%%s=%%s\n' "$__shipit_n" "$__shipit_r"
done
`

// warmProbe tells the server whether setsid -w works (tests: whether not).
var warmProbe = "setsid -w true"

// warmShell is one open server session. Only the Run holding it (Client.warmBusy)
// touches its streams.
type warmShell struct {
	sess     *ssh.Session
	in       io.WriteCloser
	out, err *markerStream
	pid      int // the server shell's: sshd made it a process group leader
	dead     chan struct{}
	release  sync.Once
}

func (w *warmShell) isDead() bool {
	select {
	case <-w.dead:
		return true
	default:
		return false
	}
}

// warmAllowed reports whether this Client may use a warm shell at all.
// MaxSessions: the warm shell holds one semaphore slot while open, so with a
// single slot it would starve every other session; below 2 it is off.
func (c *Client) warmAllowed() bool {
	return !c.noWarm && cap(c.sem) >= 2 && os.Getenv(WarmEnv) != "0"
}

// takeWarm returns the idle warm shell, starting one if needed, marked busy;
// nil means use a session. The first Run on a Client starts one only with
// Config.WarmFirst: a single command (shipit exec) would pay for the loop's
// start-up for nothing.
func (c *Client) takeWarm(ctx context.Context, cmd string) *warmShell {
	if !c.warmAllowed() || len(cmd) > maxWarmCmd || strings.IndexByte(cmd, 0) >= 0 {
		return nil
	}
	c.warmMu.Lock()
	c.warmRuns++
	for c.warmStarting != nil {
		// prewarm is starting the shell: wait for it rather than pay for
		// a session's login shell meanwhile.
		starting := c.warmStarting
		c.warmMu.Unlock()
		select {
		case <-starting:
		case <-ctx.Done():
			return nil
		}
		c.warmMu.Lock()
	}
	first := 2
	if c.pool.cfg.WarmFirst {
		first = 1
	}
	if c.warmBusy || c.warmRuns < first || c.warmFailures >= maxWarmFailures {
		c.warmMu.Unlock()
		return nil
	}
	c.warmBusy = true
	w := c.warm
	if w != nil && w.isDead() {
		c.warm = nil // busy stays set: only this Run may start the next
	}
	c.warmMu.Unlock()
	if w != nil && !w.isDead() {
		return w
	}
	if w != nil {
		w.close(c)
	}
	w, err := c.startWarm(ctx)
	c.warmMu.Lock()
	defer c.warmMu.Unlock()
	if err != nil {
		c.warmBusy = false
		if ctx.Err() == nil {
			c.warmFailures++
		}
		return nil
	}
	c.warm = w
	return w
}

// prewarm starts the warm shell and the SFTP subsystem in the background
// (Config.WarmFirst). Runs meanwhile wait for the shell (takeWarm).
func (c *Client) prewarm() {
	go func() { _, _ = c.SFTP() }() // a failure is retried by the first user
	c.warmMu.Lock()
	if !c.warmAllowed() || c.warmBusy || c.warm != nil || c.warmStarting != nil {
		c.warmMu.Unlock()
		return
	}
	c.warmBusy = true
	starting := make(chan struct{})
	c.warmStarting = starting
	c.warmMu.Unlock()
	go func() {
		// Bounded by startWarm's own timeout, and by the connection.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		w, err := c.startWarm(ctx)
		cancel()
		c.warmMu.Lock()
		c.warmStarting = nil
		c.warmBusy = false
		if err == nil {
			c.warm = w
		} else {
			c.warmFailures++
		}
		c.warmMu.Unlock()
		close(starting)
	}()
}

// putWarm makes w idle again.
func (c *Client) putWarm(w *warmShell) {
	c.warmMu.Lock()
	if c.warm == w {
		c.warmBusy = false
	}
	c.warmMu.Unlock()
}

// forgetWarm drops w from the Client so the next Run starts a new one.
func (c *Client) forgetWarm(w *warmShell) {
	c.warmMu.Lock()
	if c.warm == w {
		c.warm = nil
		c.warmBusy = false
	}
	c.warmMu.Unlock()
}

// discardWarm drops w, closes its session and gives back its semaphore slot.
func (c *Client) discardWarm(w *warmShell) {
	c.forgetWarm(w)
	w.close(c)
}

func (w *warmShell) close(c *Client) {
	w.sess.Close()
	w.release.Do(c.release)
}

// startWarm opens the server session and waits for its hello. It takes a
// semaphore slot, held until the warm shell is discarded.
func (c *Client) startWarm(ctx context.Context) (*warmShell, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, warmStartTimeout)
	defer cancel()
	hello := newNonce()
	type started struct {
		w   *warmShell
		err error
	}
	startc := make(chan started, 1)
	go func() {
		w, err := c.openWarm(hello)
		startc <- started{w, err}
	}()
	var st started
	select {
	case st = <-startc:
	case <-ctx.Done():
		go func() {
			if st := <-startc; st.w != nil {
				st.w.sess.Close()
			}
			c.release()
		}()
		return nil, ctx.Err()
	}
	if st.err != nil {
		c.release()
		return nil, st.err
	}
	w := st.w
	type greeting struct {
		tag string
		err error
	}
	outc, errc := make(chan greeting, 1), make(chan greeting, 1)
	go func() { tag, err := w.out.next(hello, nil); outc <- greeting{tag, err} }()
	go func() { tag, err := w.err.next(hello, nil); errc <- greeting{tag, err} }()
	var out, serr greeting
	for got := 0; got < 2; got++ {
		select {
		case out = <-outc:
		case serr = <-errc:
		case <-ctx.Done():
			c.discardWarm(w)
			return nil, ctx.Err()
		}
	}
	pid, perr := strconv.Atoi(strings.TrimPrefix(out.tag, "="))
	if err := errors.Join(out.err, serr.err); err != nil || perr != nil || serr.tag != "+" || pid <= 1 {
		c.discardWarm(w)
		return nil, c.errf("warm shell: no greeting (%v)", err)
	}
	w.pid = pid
	return w, nil
}

func (c *Client) openWarm(hello string) (*warmShell, error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return nil, err
	}
	in, err1 := sess.StdinPipe()
	out, err2 := sess.StdoutPipe()
	serr, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		return nil, err
	}
	if err := sess.Start(fmt.Sprintf(warmServer, hello, warmProbe)); err != nil {
		sess.Close()
		return nil, err
	}
	w := &warmShell{sess: sess, in: in, out: &markerStream{r: out}, err: &markerStream{r: serr}, dead: make(chan struct{})}
	go func() { _ = sess.Wait(); close(w.dead) }()
	return w, nil
}

// runWarm runs cmd in w. sent is false when cmd certainly did not start (w
// was dead): the caller may then run it another way, never otherwise.
func (c *Client) runWarm(ctx context.Context, w *warmShell, cmd string, stdout, stderr io.Writer) (code int, sent bool, err error) {
	if err := ctx.Err(); err != nil {
		c.putWarm(w)
		return -1, true, c.errf("run: %w", err)
	}
	nonce := newNonce()
	if _, err := io.WriteString(w.in, nonce+" "+escapeWarm(cmd)+"\n"); err != nil {
		// sh's read runs only a whole line: a failed write ran nothing.
		// (Nor does one whose ack never came: warmSent is then one too high.)
		c.discardWarm(w)
		return -1, false, nil
	}
	c.warmMu.Lock()
	c.warmSent++
	c.warmMu.Unlock()
	gout, gerr := &gateWriter{w: stdout}, &gateWriter{w: stderr}
	type end struct {
		tag string
		err error
	}
	outc, errc := make(chan end, 1), make(chan end, 1)
	acked := make(chan struct{})
	group := 0 // the command's process group, once acked; 0: the server's
	go func() {
		// The ack comes before the command starts: EOF before it means the
		// command never ran.
		tag, err := w.out.next(nonce, nil)
		if err != nil || !strings.HasPrefix(tag, "+") {
			outc <- end{tag, fmt.Errorf("no ack: %q, %w", tag, err)}
			return
		}
		group, _ = strconv.Atoi(tag[1:])
		close(acked)
		tag, err = w.out.next(nonce, gout)
		outc <- end{tag, err}
	}()
	go func() {
		if tag, err := w.err.next(nonce, nil); err != nil || tag != "+" {
			errc <- end{tag, fmt.Errorf("no ack on stderr: %q, %w", tag, err)}
			return
		}
		tag, err := w.err.next(nonce, gerr)
		errc <- end{tag, err}
	}()
	var out, serr end
	for got := 0; got < 2; {
		select {
		case out = <-outc:
			got++
			if out.err != nil && !isClosed(acked) {
				c.discardWarm(w)
				return -1, false, nil
			}
		case serr = <-errc:
			got++
		case <-ctx.Done():
			gout.close()
			gerr.close()
			// The ack, printed just before the command starts, names its
			// group: wait for it briefly if it is still on its way.
			select {
			case <-acked:
			case <-outc:
			case <-time.After(warmKillWait / 2):
			}
			if !isClosed(acked) {
				group = 0
			}
			c.cancelWarm(w, group)
			return -1, true, ctx.Err()
		}
	}
	if err := errors.Join(out.err, serr.err, gout.err, gerr.err); err != nil || out.tag != serr.tag {
		if out.err != nil || serr.err != nil || out.tag != serr.tag {
			c.discardWarm(w)
		} else {
			c.putWarm(w) // only the caller's writer failed: the shell is in step
		}
		return -1, true, c.errf("run: warm shell: %w", errors.Join(err, fmt.Errorf("end %q/%q", out.tag, serr.tag)))
	}
	code, perr := strconv.Atoi(strings.TrimPrefix(out.tag, "="))
	if perr != nil || !strings.HasPrefix(out.tag, "=") {
		c.discardWarm(w)
		return -1, true, c.errf("run: warm shell: bad exit marker %q", out.tag)
	}
	c.putWarm(w)
	return code, true, nil
}

// cancelWarm discards w and kills the command's process group (group, 0 if
// unknown) and the server's (sshd made the server a group leader; an eval'd
// command stays in its group) through a fresh session that borrows the warm
// shell's semaphore slot. It waits at most warmKillWait.
func (c *Client) cancelWarm(w *warmShell, group int) {
	c.forgetWarm(w)
	w.sess.Close() // the slot is kept for the kill session
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.release.Do(c.release)
		s, err := c.ssh.NewSession()
		if err != nil {
			return
		}
		defer s.Close()
		pgids := fmt.Sprintf("-%d", w.pid)
		if group > 1 {
			pgids = fmt.Sprintf("-%d %s", group, pgids)
		}
		_ = s.Run("kill -s KILL -- " + pgids + " 2>/dev/null")
	}()
	select {
	case <-done:
	case <-time.After(warmKillWait):
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "@shipit-" + hex.EncodeToString(b[:])
}

// escapeWarm encodes cmd for one line of printf %b: '\' doubled, control
// bytes (newline...) as \0ooo. cmd holds no NUL (takeWarm checks).
func escapeWarm(cmd string) string {
	var b strings.Builder
	b.Grow(len(cmd) + 16)
	for i := 0; i < len(cmd); i++ {
		switch ch := cmd[i]; {
		case ch == '\\':
			b.WriteString(`\\`)
		case ch < 0x20 || ch == 0x7f:
			fmt.Fprintf(&b, `\0%03o`, ch)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// markerStream reads one of the server's output streams, splitting it at
// markers.
type markerStream struct {
	r     io.Reader
	buf   []byte // read but not yet passed on
	chunk []byte
}

// next copies the stream to w (nil: drop) up to the next "nonce TAG\n" and
// returns TAG. Only a tail of output that could be the start of the marker
// is held back, so output reaches w as it comes. A failing w is drained on
// (the shell must stay in step); gateWriter records its error.
func (s *markerStream) next(nonce string, w io.Writer) (string, error) {
	m := []byte(nonce)
	if s.chunk == nil {
		s.chunk = make([]byte, 32<<10)
	}
	for {
		if i := bytes.Index(s.buf, m); i >= 0 {
			write(w, s.buf[:i])
			s.buf = s.buf[i:]
			if j := bytes.IndexByte(s.buf, '\n'); j >= 0 {
				tag := string(s.buf[len(m):j])
				s.buf = append([]byte(nil), s.buf[j+1:]...)
				return tag, nil
			}
			if len(s.buf) > len(m)+32 {
				return "", errors.New("protocol error: overlong marker")
			}
		} else {
			k := len(s.buf) - heldBack(s.buf, m)
			write(w, s.buf[:k])
			s.buf = append(s.buf[:0], s.buf[k:]...)
		}
		n, err := s.r.Read(s.chunk)
		s.buf = append(s.buf, s.chunk[:n]...)
		if err != nil && n == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// heldBack is the length of the longest tail of b that is a proper prefix of m.
func heldBack(b, m []byte) int {
	k := min(len(b), len(m)-1)
	for ; k > 0; k-- {
		if bytes.Equal(b[len(b)-k:], m[:k]) {
			return k
		}
	}
	return 0
}

func write(w io.Writer, b []byte) {
	if w != nil && len(b) > 0 {
		_, _ = w.Write(b)
	}
}

// gateWriter passes writes on until closed: once a cancelled Run returns,
// nothing more reaches the caller's writer. It keeps the first write error.
type gateWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed atomic.Bool
	err    error
}

func (g *gateWriter) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed.Load() || g.w == nil || g.err != nil {
		return len(b), nil
	}
	if _, err := g.w.Write(b); err != nil {
		g.err = err
	}
	return len(b), nil
}

// close waits for a write in progress, as long as the session path waits
// for its output copy: a caller's writer that blocks is not waited for.
func (g *gateWriter) close() {
	g.closed.Store(true)
	done := make(chan struct{})
	go func() {
		g.mu.Lock()
		g.mu.Unlock() //nolint:staticcheck // only waits for a Write to end
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(warmKillWait):
	}
}
