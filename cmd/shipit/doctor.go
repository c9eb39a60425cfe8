package main

import "errors"

// DoctorCmd is not built yet (stub so the command tree compiles).
type DoctorCmd struct{}

func (c *DoctorCmd) Run(g *Globals) error { return errors.New("not implemented yet") }
