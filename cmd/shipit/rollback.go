package main

import (
	"time"

	"github.com/shipit-dev/shipit/app/session"
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
	return s.Rollback(g.ctx, c.Release, session.RollbackOptions{LockWait: c.LockWait, Plan: c.Plan, AllowUnrouted: c.AllowUnrouted})
}
