package main

import "errors"

// SetupCmd is not built yet (stub so the command tree compiles).
type SetupCmd struct{}

func (c *SetupCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
