package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// Doctor runs the doctor checklist (recipes/doctor.lua) on every host and
// prints it grouped per host, then a summary; it fails when a check did.
func (s *Session) Doctor(ctx context.Context) error {
	w := s.Proj.opts.Stdout
	s.Out.QuietReports = !s.Proj.opts.Verbose // printed grouped per host below
	s.Out.QuietSteps = true
	results := s.Task(ctx, orchestrator.Task{Name: "doctor"})
	for i, r := range results {
		if len(r.Report) == 0 && r.Err != nil {
			// The checklist never ran: the connection is the report.
			results[i].Report = connectionItems(r.Err)
		}
	}
	s.Out.Reports("doctor "+s.Env.Stage, results)
	failedHosts := 0
	for _, r := range results {
		if ui.HasFailure(r.Report) || r.Err != nil {
			failedHosts++
		}
	}
	fmt.Fprintln(w)
	if failedHosts == 0 {
		fmt.Fprintf(w, "doctor %s: all checks passed on %d host(s)\n", s.Env.Stage, len(results))
		return nil
	}
	items := max(ui.Count(results, runtime.ReportFail), failedHosts)
	fmt.Fprintf(w, "doctor %s: %d failed check(s) on %d of %d host(s)\n", s.Env.Stage, items, failedHosts, len(results))
	return hint.New(fmt.Sprintf("doctor: %d of %d host(s) have failed checks", failedHosts, len(results)),
		"each ✗ above is followed by its fix; rerun `shipit doctor` after fixing")
}

// connectionItems turns a failed SSH connection into checklist items: the
// first of reachable / host key / auth that failed, with the fix.
func connectionItems(err error) []runtime.ReportItem {
	ok := func(item, detail string) runtime.ReportItem {
		return runtime.ReportItem{Status: runtime.ReportOK, Item: item, Detail: detail}
	}
	bad := func(item, fix string) runtime.ReportItem {
		return runtime.ReportItem{Status: runtime.ReportFail, Item: item, Detail: text.FirstLine(err.Error()), Fix: fix}
	}
	fix := orchestrator.ConnectHint(err)
	var hk *sshpool.HostKeyError
	switch {
	case errors.As(err, &hk):
		return []runtime.ReportItem{ok("reachable", "sshd answered"), bad("host key known", fix)}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return []runtime.ReportItem{ok("reachable", "sshd answered"), ok("host key known", "matches known_hosts"), bad("auth", fix)}
	default:
		return []runtime.ReportItem{bad("reachable", fix)}
	}
}
