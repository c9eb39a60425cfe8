package main

// DoctorCmd runs the "doctor" Lua pipeline (recipes/doctor.lua) on every
// host and prints its checklist grouped per host, then a summary.
type DoctorCmd struct {
	hostFlags
}

func (c *DoctorCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Doctor(g.ctx)
}
