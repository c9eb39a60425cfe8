package main

import "github.com/shipit-dev/shipit/app/session"

// LogsCmd shows the logs of the current release's containers on every host
// (the app:logs task of recipes/ops.lua).
type LogsCmd struct {
	hostFlags
	Service string `arg:"" optional:"" help:"Only this compose service (default: all)."`
	Follow  bool   `short:"f" help:"Keep streaming new lines from every host until Ctrl-C."`
	Tail    int    `short:"n" default:"-1" help:"Only the last N lines per container (default: all)."`
	Since   string `help:"Only lines since a duration ago (10m, 2h) or a timestamp (2026-11-25T20:00:00)."`
}

func (c *LogsCmd) Run(g *Globals) error {
	o := session.LogsOptions{Service: c.Service, Follow: c.Follow, Tail: c.Tail, Since: c.Since}
	if err := o.Check(); err != nil {
		return err
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Logs(g.ctx, o)
}
