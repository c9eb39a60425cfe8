package main

import "errors"

// SecretsCmd is not built yet (stub so the command tree compiles).
type SecretsCmd struct{}

func (c *SecretsCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
