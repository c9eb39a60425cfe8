package main

import "github.com/shipit-dev/shipit/app/orchestrator"

// ReleasesCmd lists releases on every host.
type ReleasesCmd struct {
	hostFlags
}

func (c *ReleasesCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.close()
	return orchestrator.Failed(s.task(g.ctx, orchestrator.Task{Name: "releases"}))
}
