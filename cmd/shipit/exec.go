package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/fleet"
	"github.com/shipit-dev/shipit/runtime"
)

// ExecCmd runs an ad-hoc command on every host of a stage.
type ExecCmd struct {
	Stage    string   `short:"s" required:"" help:"Stage to run on."`
	Parallel int      `default:"0" help:"Run on at most N hosts at once (0: all)."`
	Command  []string `arg:"" passthrough:"" help:"Command and arguments, after --. A single argument is run as a shell command line."`
}

// ExecError reports the hosts where the command failed; Errs keeps the
// connection errors so their hints reach the user.
type ExecError struct {
	Failed []string
	Errs   []error
}

func (e *ExecError) Unwrap() []error { return e.Errs }

func (e *ExecError) Error() string {
	return fmt.Sprintf("command failed on %d host(s): %s", len(e.Failed), strings.Join(e.Failed, ", "))
}

func (c *ExecCmd) Run(g *Globals) error {
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return fmt.Errorf("no command given: shipit exec -s STAGE -- CMD [ARGS...]")
	}
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	cmdline := strings.Join(args, " ") // one argument: the user's shell line
	st := run.Env.Config.Stages[c.Stage]
	targets := fleet.Targets(st)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := make([]string, len(targets))
	var failed []string
	var errs []error
	sem := make(chan struct{}, max(1, min(len(targets), orAll(c.Parallel, len(targets)))))
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := st.Hosts[i].Address
			emit := func(k runtime.EventKind, s string) { printer.Emit(runtime.Event{Host: name, Kind: k, Text: s}) }
			conn, err := pool.Get(g.ctx, t)
			if err != nil {
				emit(runtime.Warn, err.Error())
				mu.Lock()
				errs = append(errs, err)
				failed, codes[i] = append(failed, name), "unreachable"
				mu.Unlock()
				return
			}
			var out lineWriter
			out.emit = func(s string) { emit(runtime.Info, s) }
			printer.Emit(runtime.Event{Host: name, Kind: runtime.Command, Text: cmdline})
			code, err := conn.Run(g.ctx, cmdline, nil, &out, &out)
			out.Flush()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				emit(runtime.Warn, err.Error())
				errs = append(errs, err)
				failed, codes[i] = append(failed, name), "error"
			case code != 0:
				failed, codes[i] = append(failed, name), fmt.Sprintf("exit %d", code)
			default:
				codes[i] = "exit 0"
			}
		}()
	}
	wg.Wait()
	for i, h := range st.Hosts {
		fmt.Fprintf(g.stdout, "%s: %s\n", h.Address, codes[i])
	}
	if len(failed) > 0 {
		return &ExecError{Failed: failed, Errs: errs}
	}
	return nil
}

func orAll(n, all int) int {
	if n <= 0 {
		return all
	}
	return n
}

// lineWriter turns a byte stream into whole lines (output is always shown
// for exec, not only with -v).
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.emit(strings.TrimSuffix(line, "\n"))
	}
}

func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}
