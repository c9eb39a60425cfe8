// Package streammod gives recipes commands whose output is shown live:
// require("shipit.stream").run(h, cmd) emits every line as it arrives
// (shipit logs -f, shipit app exec), and .tty(h, cmd) runs a command on a
// remote pseudo-terminal wired to the local one (shipit app exec -i).
package streammod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/term"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.stream", Open: open,
		Doc: "run(h, cmd [, {follow=bool}]) -> code | nil, 'interrupted': output lines shown live under the host's prefix; tty(h, cmd) -> code: interactive PTY wired to the local terminal"})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"run": luaRun, "tty": luaTTY})
}

// FollowWrap makes cmd die when the SSH channel closes. Killing the
// session only signals the remote shell, not the process it forked (e.g.
// `docker compose logs -f`), which would otherwise linger until it next
// writes. A watcher reads stdin, which shipit holds open and sshd closes
// with the channel, and kills the command on EOF.
func FollowWrap(cmd string) string {
	// Background jobs get /dev/null as stdin, so the watcher reads a copy
	// of the session's stdin kept on fd 3.
	return "exec 3<&0; ( " + cmd + " ) & p=$!; (cat <&3 >/dev/null; kill $p 2>/dev/null) >/dev/null 2>&1 & wait $p"
}

func luaRun(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	cmd := L.CheckString(2)
	follow := false
	if opts := L.OptTable(3, nil); opts != nil {
		opts.ForEach(func(k, v lua.LValue) {
			if k.String() != "follow" {
				L.ArgError(3, fmt.Sprintf("unknown option %q (known: follow)", k.String()))
			}
			follow = lua.LVAsBool(v)
		})
	}
	code, err := Run(h, cmd, follow)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			L.Push(lua.LNil)
			L.Push(lua.LString("interrupted"))
			return 2
		}
		return runtime.Raise(L, err)
	}
	L.Push(lua.LNumber(code))
	return 1
}

// Run runs cmd on h and emits each output line (stdout and stderr) as an
// Info event as soon as it is complete.
func Run(h *runtime.Host, cmd string, follow bool) (int, error) {
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	if follow {
		cmd = FollowWrap(cmd)
	}
	// stdin stays open (nothing is ever written) until the command ends,
	// so the follow watcher only sees EOF when the channel closes.
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	out := &lines{emit: func(s string) { h.Emit(runtime.Event{Kind: runtime.Info, Text: s}) }}
	code, err := h.Conn.Run(h.Context(), cmd, stdinR, out, out)
	out.flush()
	if err != nil {
		return code, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return code, nil
}

// lines turns a byte stream into whole lines; stdout and stderr share it,
// so it is locked.
type lines struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(string(bytes.TrimSuffix(w.buf[:i], []byte("\r"))))
		w.buf = w.buf[i+1:]
	}
}

func (w *lines) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// PTYRunner is a connection that can run a command on a pseudo-terminal
// (*sshpool.Client).
type PTYRunner interface {
	RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error)
}

// NotATerminalError is tty() without a local terminal.
type NotATerminalError struct{}

func (NotATerminalError) Error() string { return "an interactive session needs a terminal on stdin" }
func (NotATerminalError) Hint() string {
	return "run it from a terminal, or drop -i to run the command without a TTY"
}

func luaTTY(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	cmd := L.CheckString(2)
	code, err := TTY(h, cmd)
	if err != nil {
		return runtime.Raise(L, err)
	}
	L.Push(lua.LNumber(code))
	return 1
}

// TTY runs cmd on a remote PTY with the local terminal in raw mode, so
// keys (Ctrl-C included) go to the remote program.
func TTY(h *runtime.Host, cmd string) (int, error) {
	pr, ok := h.Conn.(PTYRunner)
	if !ok {
		return -1, fmt.Errorf("host %s: this connection cannot open a terminal", h.Name)
	}
	in, outFd := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	if !term.IsTerminal(in) {
		return -1, NotATerminalError{}
	}
	w, ht, err := term.GetSize(outFd)
	if err != nil {
		w, ht = 80, 24
	}
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	old, err := term.MakeRaw(in)
	if err != nil {
		return -1, fmt.Errorf("terminal raw mode: %w", err)
	}
	defer term.Restore(in, old) //nolint:errcheck // best effort on the way out
	resize := make(chan [2]int, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-winch:
				if w, ht, err := term.GetSize(outFd); err == nil {
					select {
					case resize <- [2]int{w, ht}:
					default:
					}
				}
			}
		}
	}()
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm"
	}
	code, err := pr.RunPTY(h.Context(), cmd, os.Stdin, os.Stdout, termName, w, ht, resize)
	if err != nil {
		return code, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return code, nil
}
