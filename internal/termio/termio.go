// Package termio wires the local terminal to a command running on a
// remote pseudo-terminal (shipit app exec -t).
package termio

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// PTYRunner is a connection that can run a command on a pseudo-terminal
// (*sshpool.Client).
type PTYRunner interface {
	RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error)
}

// NotATerminalError is an interactive session without a local terminal.
type NotATerminalError struct{}

func (NotATerminalError) Error() string { return "an interactive session needs a terminal on stdin" }
func (NotATerminalError) Hint() string {
	return "run it from a terminal, or drop -t to run the command without a TTY"
}

// Run runs cmd on a remote PTY with the local terminal in raw mode, so keys
// (Ctrl-C included) go to the remote program; window size changes follow.
func Run(ctx context.Context, pr PTYRunner, cmd string) (int, error) {
	in, outFd := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	if !term.IsTerminal(in) {
		return -1, NotATerminalError{}
	}
	w, ht, err := term.GetSize(outFd)
	if err != nil {
		w, ht = 80, 24
	}
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
	return pr.RunPTY(ctx, cmd, os.Stdin, os.Stdout, termName, w, ht, resize)
}
