package main

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
	return s.Run(g.ctx, c.Task)
}
