package session

import (
	"context"
	"fmt"
	"io"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

// exitCodeError is a command that ran and exited non-zero on a host.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Exec runs args on every selected host: one argument is the user's shell
// line, several a command and its words; then one status line per host.
func (s *Session) Exec(ctx context.Context, w io.Writer, args []string) error {
	cmdline := execLine(args)
	results := s.Fleet.Each(ctx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
		out := &text.Lines{Emit: func(l string) { s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Info, Text: l}) }}
		s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Command, Text: cmdline})
		code, err := conn.Run(ctx, cmdline, nil, out, out)
		out.Close()
		if err == nil && code != 0 {
			err = exitCodeError{code}
		}
		if _, exited := err.(exitCodeError); err != nil && !exited {
			s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Warn, Text: err.Error()})
		}
		return orchestrator.Result{Err: err}
	})
	return hostStatus(w, results)
}

// execLine is the remote command line of exec's arguments: a single
// argument is the user's shell line, as written; several are a command and
// its arguments, each quoted to reach it as one word (`-- touch "a b"`
// touches one file), as `app exec` does.
func execLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return shell.Join(args...)
}

// hostStatus prints one line per host ("exit 0", "exit 3", "unreachable")
// and fails naming the hosts that failed.
func hostStatus(w io.Writer, results []orchestrator.Result) error {
	var failed []string
	var errs []error
	for _, r := range results {
		status := "exit 0"
		switch e := r.Err.(type) {
		case nil:
		case exitCodeError:
			status = e.Error()
		default:
			status = "error: " + text.FirstLine(r.Err.Error())
			errs = append(errs, r.Err)
		}
		if r.Err != nil {
			failed = append(failed, r.Host)
		}
		fmt.Fprintf(w, "%s: %s\n", r.Host, status)
	}
	if len(failed) == 0 {
		return nil
	}
	return &orchestrator.HostsError{Failed: failed, Errs: errs}
}
