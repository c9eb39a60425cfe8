package main

import (
	"context"
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
)

// RollbackCmd switches back to the previous or a named release.
type RollbackCmd struct {
	hostFlags
	LockWait      time.Duration `help:"If another shipit holds a host's lock, wait up to this long (e.g. 10m) instead of failing; it prints who holds it."`
	Release       string        `help:"Release to switch to (default: previous_release from shipit.lock)."`
	Plan          bool          `help:"Show what the rollback would do on each host, changing nothing."`
	AllowUnrouted bool          `help:"Switch even on a host where no Traefik runs to route the stage's domain (a proxy of your own routes it); warns. Without it such a rollback fails before switching."`
}

func (c *RollbackCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Env.LockWait, s.Env.AllowUnrouted = c.LockWait, c.AllowUnrouted
	if c.Plan {
		return s.ShowPlan(g.ctx, "rollback", c.Release, orchestrator.Rollout{}, "")
	}
	start := time.Now()
	results := s.Task(g.ctx, orchestrator.Task{Name: "rollback", Release: c.Release})
	s.Record(g.ctx, "rollback", start, results)
	// Like deploy's, the summary says what each host runs now.
	s.Fleet.ReadCurrent(context.WithoutCancel(g.ctx), s.Env.Config.AppPath(), results)
	s.Out.Summary(fmt.Sprintf("rollback of %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}
