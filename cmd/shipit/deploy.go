package main

import (
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/builtins/releases"
	"github.com/shipit-dev/shipit/internal/fleet"
)

// DeployCmd runs the deploy pipeline.
type DeployCmd struct {
	Stage    string `short:"s" required:"" help:"Stage to deploy to (a [stages.NAME] of shipit.toml)."`
	Parallel int    `default:"0" help:"Deploy to at most N hosts at once (0: all)."`
}

func (c *DeployCmd) Run(g *Globals) error {
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	run.Release = releases.Name(time.Now())
	start := time.Now()
	results := run.Task(g.ctx, "deploy")
	printer.Summary(fmt.Sprintf("deploy to %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return fleet.Failed(results)
}
