package session

import (
	"context"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/audit"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

// Record appends one audit entry per result to the selected hosts'
// logs: command is "deploy", "rollback", "setup", "lock-release",
// "recover"..., start when the command began. It never fails the command:
// a host whose log cannot be written gets a warning. It runs even after
// Ctrl-C (an interrupted run is recorded as such), bounded to a few
// seconds.
//
// Call it once the hosts' work is done, e.g. in DeployCmd.Run:
//
//	results := s.Task(ctx, ...)
//	s.Record(ctx, "deploy", start, results)
func (s *Session) Record(cmdCtx context.Context, command string, start time.Time, results []orchestrator.Result) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cmdCtx), 10*time.Second)
	defer cancel()
	byHost := map[string]orchestrator.Result{}
	for _, r := range results {
		byHost[r.Host] = r
	}
	base := audit.Entry{Command: command, Stage: s.Env.Stage, User: audit.LocalUser(), Author: audit.GitAuthor(ctx, s.Proj.Dir)}
	appPath := s.Env.Config.AppPath()
	s.Fleet.EachHost(ctx, func(ctx context.Context, h orchestrator.Host) orchestrator.Result {
		r, ok := byHost[h.Name]
		if !ok || orchestrator.Unreachable(r.Err) {
			// Nothing ran on a host shipit could not reach: nothing to
			// record, and dialing it again would only repeat the failure.
			return orchestrator.Result{}
		}
		e := base
		e.Host, e.Release = h.Name, r.Release
		e.PreviousRelease, e.GitSHA = r.PreviousRelease, r.GitSHA
		e.Duration = r.Elapsed
		e.Verify = r.Verify
		if e.Duration == 0 {
			e.Duration = time.Since(start)
		}
		e.Finish(start, r.Err, s.Env.Redact)
		if cmdCtx.Err() != nil && r.Err != nil {
			e.Result = audit.Interrupted
		}
		conn, err := s.Fleet.Dial(ctx, h)
		if err == nil {
			err = audit.Append(ctx, conn, appPath, e)
		}
		if err != nil {
			s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Warn, Text: "audit log not written: " + text.FirstLine(err.Error())})
		}
		return orchestrator.Result{}
	})
}
