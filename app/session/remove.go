package session

import (
	"context"
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/runtime"
)

// Remove removes the app from every selected host (recipes/remove.lua:
// every release's containers, images and networks, the app's directory)
// and prints what went per host. Accessories are not touched.
func (s *Session) Remove(ctx context.Context, lockWait time.Duration) error {
	w, cfg := s.Proj.opts.Stdout, s.Env.Config
	s.Env.LockWait = lockWait
	if !s.Proj.opts.Verbose {
		s.Out.QuietSteps = true // the removed items say more
	}
	start := time.Now()
	results := s.Task(ctx, orchestrator.Task{Name: "remove"})
	fmt.Fprintf(w, "\nremove of %s from %s:\n", cfg.App.Name, s.Env.Stage)
	for _, r := range results {
		n := ui.Count([]orchestrator.Result{r}, runtime.ReportChanged)
		if r.Err != nil {
			fmt.Fprintf(w, "  %s  FAILED after %d removal(s)\n", r.Host, n)
		} else {
			fmt.Fprintf(w, "  %s  ok, %d removed\n", r.Host, n)
		}
	}
	fmt.Fprintf(w, "took %s\n", time.Since(start).Round(10*time.Millisecond))
	return orchestrator.Failed(results)
}
