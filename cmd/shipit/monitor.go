package main

import (
	"os"
	"time"

	"github.com/shipit-dev/shipit/app/session"
)

// MonitorCmd is the live dashboard (or one snapshot) of a stage.
type MonitorCmd struct {
	hostFlags
	Once     bool          `help:"Print one snapshot as text and exit."`
	JSON     bool          `name:"json" help:"Print one snapshot as JSON and exit (with or without --once)."`
	Interval time.Duration `default:"2s" help:"Refresh interval of the live dashboard."`
	Timeout  time.Duration `default:"20s" help:"Per-host limit for one collection; a host slower than this is shown as unreachable."`
}

func (c *MonitorCmd) Run(g *Globals) error {
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	return p.Monitor(g.ctx, session.MonitorOptions{Stage: c.Stage, Hosts: c.Hosts, Parallel: c.Parallel,
		Once: c.Once, JSON: c.JSON, Interval: c.Interval, Timeout: c.Timeout}, os.Stdin, g.stdout)
}
