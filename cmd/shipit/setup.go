package main

import (
	"os"
	"time"
)

// SetupCmd provisions the hosts of a stage by running the "setup" Lua
// pipeline (recipes/setup.lua), which reports every item as ok or changed.
type SetupCmd struct {
	hostFlags
	LockWait      time.Duration `help:"If another shipit holds a host's lock, wait up to this long (e.g. 10m) instead of failing; it prints who holds it."`
	InstallDocker bool          `help:"Install Docker Engine and compose with the host's package manager (apt-get) where missing."`
}

// traefikPortsEnv overrides the host ports Traefik publishes ("HTTP:HTTPS",
// default "80:443"): for test machines where 80/443 are taken.
const traefikPortsEnv = "SHIPIT_TRAEFIK_PORTS"

func (c *SetupCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Setup(g.ctx, c.LockWait, c.InstallDocker, os.Getenv(traefikPortsEnv))
}
