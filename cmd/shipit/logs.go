package main

import "errors"

// LogsCmd is not built yet (stub so the command tree compiles).
type LogsCmd struct{}

func (c *LogsCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
