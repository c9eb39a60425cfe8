package main

import "errors"

// MonitorCmd is not built yet (stub so the command tree compiles).
type MonitorCmd struct{}

func (c *MonitorCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
