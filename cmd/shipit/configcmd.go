package main

import "errors"

// ConfigCmd is not built yet (stub so the command tree compiles).
type ConfigCmd struct{}

func (c *ConfigCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
