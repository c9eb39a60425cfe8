package session

import (
	"context"
	"fmt"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/runtime"
)

// hasReport says whether any host reported items.
func hasReport(results []orchestrator.Result) bool {
	for _, r := range results {
		if len(r.Report) > 0 {
			return true
		}
	}
	return false
}

// reportFailed is an error when any host reported a failed item.
func reportFailed(results []orchestrator.Result) error {
	failed := 0
	for _, r := range results {
		if ui.HasFailure(r.Report) {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	return hint.New(fmt.Sprintf("%d failed item(s) on %d of %d host(s)", ui.Count(results, runtime.ReportFail), failed, len(results)),
		"each ✗ above is followed by its fix")
}

// Run runs a task of the recipes or shipit.lua on every selected host, at
// its current release; one that does not exist is refused before any host.
func (s *Session) Run(ctx context.Context, task string) error {
	if err := s.Proj.Plan().NoTask(task); err != nil {
		return err
	}
	results := s.Task(ctx, orchestrator.Task{Name: task, AtCurrent: true})
	if err := orchestrator.Failed(results); err != nil {
		s.Out.Summary("run "+task, results)
		return err
	}
	if hasReport(results) {
		s.Out.Reports("run "+task, results)
		return reportFailed(results)
	}
	return nil
}
