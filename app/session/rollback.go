package session

import (
	"context"
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
)

// RollbackOptions are rollback's flags.
type RollbackOptions struct {
	LockWait      time.Duration
	Plan          bool
	AllowUnrouted bool
}

// Rollback switches every selected host back to release ("": each host's
// previous_release), or shows the plan of it; records it in the audit logs
// and prints the summary.
func (s *Session) Rollback(ctx context.Context, release string, o RollbackOptions) error {
	s.Env.LockWait, s.Env.AllowUnrouted = o.LockWait, o.AllowUnrouted
	if o.Plan {
		return s.ShowPlan(ctx, "rollback", release, orchestrator.Rollout{}, "")
	}
	start := time.Now()
	results := s.Task(ctx, orchestrator.Task{Name: "rollback", Release: release})
	s.Record(ctx, "rollback", start, results)
	// Like deploy's, the summary says what each host runs now.
	s.Fleet.ReadCurrent(context.WithoutCancel(ctx), s.Env.Config.AppPath(), results)
	s.Out.Summary(fmt.Sprintf("rollback of %s: %s", s.Env.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}
