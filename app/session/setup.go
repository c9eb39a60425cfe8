package session

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/runtime"
)

// Setup provisions every selected host (Docker checks, the traefik network
// and container, the app's directories) and prints what changed per host.
func (s *Session) Setup(ctx context.Context, lockWait time.Duration, installDocker bool, traefikPorts string) error {
	s.Env.LockWait = lockWait
	s.Env.Params = map[string]string{
		"install_docker": strconv.FormatBool(installDocker),
		"traefik_ports":  traefikPorts,
	}
	if !s.Proj.opts.Verbose {
		s.Out.QuietSteps = true // the ok/changed items say more
	}
	w := s.Proj.opts.Stdout
	start := time.Now()
	results := s.Task(ctx, orchestrator.Task{Name: "setup"})
	s.Record(ctx, "setup", start, results)
	fmt.Fprintf(w, "\nsetup of %s:\n", s.Env.Stage)
	failed := 0
	for _, r := range results {
		n := ui.Count([]orchestrator.Result{r}, runtime.ReportChanged)
		switch {
		case r.Err != nil:
			failed++
			fmt.Fprintf(w, "  %s  FAILED after %d change(s)\n", r.Host, n)
		case n == 0:
			fmt.Fprintf(w, "  %s  ok, nothing changed\n", r.Host)
		default:
			fmt.Fprintf(w, "  %s  ok, %d changed\n", r.Host, n)
		}
	}
	total := ui.Count(results, runtime.ReportChanged)
	switch {
	case failed > 0:
		fmt.Fprintf(w, "setup failed on %d of %d host(s)\n", failed, len(results))
	case total == 0:
		fmt.Fprintln(w, "nothing changed: every host was already set up")
	default:
		fmt.Fprintf(w, "%d change(s) made; a second run should change nothing\n", total)
	}
	return orchestrator.Failed(results)
}
