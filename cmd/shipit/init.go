package main

import "errors"

// InitCmd is not built yet (stub so the command tree compiles).
type InitCmd struct{}

func (c *InitCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
