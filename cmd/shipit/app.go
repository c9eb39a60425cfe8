package main

import "github.com/shipit-dev/shipit/app/session"

// AppCmd groups the commands that act on the app's containers.
type AppCmd struct {
	Exec AppExecCmd `cmd:"" help:"Run a one-off command in the web service of the current release."`
}

// AppExecCmd runs the app:exec task of recipes/ops.lua.
type AppExecCmd struct {
	hostFlags
	Interactive bool     `short:"t" aliases:"tty" help:"Interactive terminal (one host: select it with --hosts, or a single-host stage). -i is the global --ssh-key flag, so the short form is -t."`
	New         bool     `help:"Run in a fresh container of the web service (compose run --rm, the release's env) instead of the running one."`
	Command     []string `arg:"" passthrough:"" help:"Command and arguments, after --. A single argument with spaces is run with sh -c."`
}

func (c *AppExecCmd) Run(g *Globals) error {
	args, err := session.CommandArgs(c.Command, "shipit app exec -s STAGE -- CMD [ARGS...]")
	if err != nil {
		return err
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.AppExec(g.ctx, args, c.Interactive, c.New)
}
