package main

import "github.com/shipit-dev/shipit/internal/fleet"

// RunCmd runs one Lua task on every host.
type RunCmd struct {
	Task     string `arg:"" help:"Task name (see shipit tasks)."`
	Stage    string `short:"s" required:"" help:"Stage to run on."`
	Parallel int    `default:"0" help:"Run on at most N hosts at once (0: all)."`
}

func (c *RunCmd) Run(g *Globals) error {
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	run.CurrentRelease = true
	results := run.Task(g.ctx, c.Task)
	if err := fleet.Failed(results); err != nil {
		printer.Summary("run "+c.Task, results)
		return err
	}
	return nil
}
