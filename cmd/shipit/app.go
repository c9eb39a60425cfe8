package main

import "errors"

// AppCmd is not built yet (stub so the command tree compiles).
type AppCmd struct{}

func (c *AppCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
