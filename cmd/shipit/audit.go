package main

import "github.com/shipit-dev/shipit/internal/hint"

// AuditCmd shows what shipit did on the hosts, from their audit logs.
type AuditCmd struct {
	hostFlags
	N    int  `short:"n" name:"last" default:"20" placeholder:"N" help:"Show the last N entries of the selected hosts together (0: all)."`
	JSON bool `name:"json" help:"Print the entries as JSON lines (as stored on the hosts) instead of a table."`
}

func (c *AuditCmd) Run(g *Globals) error {
	if c.N < 0 {
		return hint.Errorf("-n 20 shows the last 20 entries; -n 0 shows them all", "-n %d: the number of entries cannot be negative", c.N)
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Audit(g.ctx, g.stdout, c.N, c.JSON)
}
