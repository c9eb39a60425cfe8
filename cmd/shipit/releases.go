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
	defer s.Close()
	return orchestrator.Failed(s.Task(g.ctx, orchestrator.Task{Name: "releases"}))
}
