package main

import "github.com/shipit-dev/shipit/internal/fleet"

// ReleasesCmd lists releases on every host.
type ReleasesCmd struct {
	Stage string `short:"s" required:"" help:"Stage whose hosts to list."`
}

func (c *ReleasesCmd) Run(g *Globals) error {
	run, _, pool, err := g.stageRun(c.Stage, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fleet.Failed(run.Task(g.ctx, "releases"))
}
