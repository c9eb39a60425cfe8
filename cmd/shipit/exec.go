package main

import "github.com/shipit-dev/shipit/app/session"

// ExecCmd runs an ad-hoc command on every host of a stage.
type ExecCmd struct {
	hostFlags
	Command []string `arg:"" passthrough:"" help:"Command and arguments, after --, each passed as one word. A single argument is run as a shell command line."`
}

func (c *ExecCmd) Run(g *Globals) error {
	args, err := session.CommandArgs(c.Command, "shipit exec -s STAGE -- CMD [ARGS...]")
	if err != nil {
		return err
	}
	// exec runs no Lua: a broken shipit.lua does not stand in the way of
	// the command that may be needed to look into it.
	s, err := g.openNoLua(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Exec(g.ctx, g.stdout, args)
}
