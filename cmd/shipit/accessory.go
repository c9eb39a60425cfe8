package main

import "errors"

// AccessoryCmd is not built yet (stub so the command tree compiles).
type AccessoryCmd struct{}

func (c *AccessoryCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
