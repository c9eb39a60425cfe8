package main

import "github.com/shipit-dev/shipit/app/orchestrator"

// RunCmd runs one Lua task on every host.
type RunCmd struct {
	Task string `arg:"" help:"Task name (see shipit tasks)."`
	hostFlags
}

func (c *RunCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	// A task the scripts do not define is a local mistake: said before
	// any host is contacted.
	if err := s.Proj.Plan().NoTask(c.Task); err != nil {
		return err
	}
	results := s.Task(g.ctx, orchestrator.Task{Name: c.Task, AtCurrent: true})
	if err := orchestrator.Failed(results); err != nil {
		s.Out.Summary("run "+c.Task, results)
		return err
	}
	if hasReport(results) {
		s.Out.Reports("run "+c.Task, results)
		return reportFailed(results)
	}
	return nil
}
