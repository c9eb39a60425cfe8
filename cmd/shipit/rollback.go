package main

import (
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/internal/fleet"
)

// RollbackCmd switches back to the previous or a named release.
type RollbackCmd struct {
	Stage    string `short:"s" required:"" help:"Stage to roll back."`
	Release  string `help:"Release to switch to (default: previous_release from shipit.lock)."`
	Parallel int    `default:"0" help:"Roll back at most N hosts at once (0: all)."`
}

func (c *RollbackCmd) Run(g *Globals) error {
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	run.Release = c.Release
	start := time.Now()
	results := run.Task(g.ctx, "rollback")
	printer.Summary(fmt.Sprintf("rollback of %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return fleet.Failed(results)
}
