package main

import (
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/internal/orchestrator"
)

// RollbackCmd switches back to the previous or a named release.
type RollbackCmd struct {
	hostFlags
	Release string `help:"Release to switch to (default: previous_release from shipit.lock)."`
}

func (c *RollbackCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.close()
	start := time.Now()
	results := s.task(g.ctx, orchestrator.Task{Name: "rollback", Release: c.Release})
	s.out.Summary(fmt.Sprintf("rollback of %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}
