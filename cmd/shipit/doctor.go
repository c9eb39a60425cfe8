package main

import (
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

// DoctorCmd runs the "doctor" Lua pipeline (recipes/doctor.lua) on every
// host and prints its checklist grouped per host, then a summary.
type DoctorCmd struct {
	hostFlags
}

func (c *DoctorCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Out.QuietReports = !g.Verbose // printed grouped per host below
	s.Out.QuietSteps = true
	results := s.Task(g.ctx, orchestrator.Task{Name: "doctor"})
	for i, r := range results {
		if len(r.Report) == 0 && r.Err != nil {
			// The checklist never ran: the connection is the report.
			results[i].Report = connectionItems(r.Err)
		}
	}
	s.Out.Reports("doctor "+c.Stage, results)
	failedHosts := 0
	for _, r := range results {
		if ui.HasFailure(r.Report) || r.Err != nil {
			failedHosts++
		}
	}
	fmt.Fprintln(g.stdout)
	if failedHosts == 0 {
		fmt.Fprintf(g.stdout, "doctor %s: all checks passed on %d host(s)\n", c.Stage, len(results))
		return nil
	}
	items := max(ui.Count(results, runtime.ReportFail), failedHosts)
	fmt.Fprintf(g.stdout, "doctor %s: %d failed check(s) on %d of %d host(s)\n", c.Stage, items, failedHosts, len(results))
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
