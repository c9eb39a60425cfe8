package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/runtime"
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
	s.Env.LockWait = c.LockWait
	s.Env.Params = map[string]string{
		"install_docker": strconv.FormatBool(c.InstallDocker),
		"traefik_ports":  os.Getenv(traefikPortsEnv),
	}
	if !g.Verbose {
		s.Out.QuietSteps = true // the ok/changed items say more
	}
	start := time.Now()
	results := s.Task(g.ctx, orchestrator.Task{Name: "setup"})
	s.Record(g.ctx, "setup", start, results)
	fmt.Fprintf(g.stdout, "\nsetup of %s:\n", c.Stage)
	failed := 0
	for _, r := range results {
		n := ui.Count([]orchestrator.Result{r}, runtime.ReportChanged)
		switch {
		case r.Err != nil:
			failed++
			fmt.Fprintf(g.stdout, "  %s  FAILED after %d change(s)\n", r.Host, n)
		case n == 0:
			fmt.Fprintf(g.stdout, "  %s  ok, nothing changed\n", r.Host)
		default:
			fmt.Fprintf(g.stdout, "  %s  ok, %d changed\n", r.Host, n)
		}
	}
	total := ui.Count(results, runtime.ReportChanged)
	switch {
	case failed > 0:
		fmt.Fprintf(g.stdout, "setup failed on %d of %d host(s)\n", failed, len(results))
	case total == 0:
		fmt.Fprintln(g.stdout, "nothing changed: every host was already set up")
	default:
		fmt.Fprintf(g.stdout, "%d change(s) made; a second run should change nothing\n", total)
	}
	return orchestrator.Failed(results)
}
