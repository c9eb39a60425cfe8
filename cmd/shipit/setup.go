package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/fleet"
	"github.com/shipit-dev/shipit/runtime"
)

// SetupCmd provisions the hosts of a stage by running the "setup" Lua
// pipeline (recipes/setup.lua), which reports every item as ok or changed.
type SetupCmd struct {
	Stage         string `short:"s" required:"" help:"Stage to provision (a [stages.NAME] of shipit.toml)."`
	InstallDocker bool   `help:"Install Docker Engine and compose with the host's package manager (apt-get) where missing."`
	Parallel      int    `default:"0" help:"Provision at most N hosts at once (0: all)."`
}

// traefikPortsEnv overrides the host ports Traefik publishes ("HTTP:HTTPS",
// default "80:443"): for test machines where 80/443 are taken.
const traefikPortsEnv = "SHIPIT_TRAEFIK_PORTS"

func (c *SetupCmd) Run(g *Globals) error {
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	run.Env.Params = map[string]string{
		"install_docker": strconv.FormatBool(c.InstallDocker),
		"traefik_ports":  os.Getenv(traefikPortsEnv),
	}
	counter := &changeCounter{next: printer, verbose: g.Verbose, changes: map[string]int{}}
	run.Env.Sink = counter
	results := run.Task(g.ctx, "setup")

	fmt.Fprintf(g.stdout, "\nsetup of %s:\n", c.Stage)
	total, failed := 0, 0
	for _, r := range results {
		n := counter.count(r.Host)
		total += n
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
	switch {
	case failed > 0:
		fmt.Fprintf(g.stdout, "setup failed on %d of %d host(s)\n", failed, len(results))
	case total == 0:
		fmt.Fprintln(g.stdout, "nothing changed: every host was already set up")
	default:
		fmt.Fprintf(g.stdout, "%d change(s) made; a second run should change nothing\n", total)
	}
	return fleet.Failed(results)
}

// changeCounter forwards events to the printer, hiding step start/done
// lines (the ok/changed items say more), and counts the "changed" items
// per host.
type changeCounter struct {
	next    runtime.Sink
	verbose bool
	mu      sync.Mutex
	changes map[string]int
}

func (s *changeCounter) Emit(e runtime.Event) {
	if (e.Kind == runtime.StepStart || e.Kind == runtime.StepDone) && !s.verbose {
		return
	}
	if e.Kind == runtime.Info && strings.HasPrefix(e.Text, "changed ") {
		s.mu.Lock()
		s.changes[e.Host]++
		s.mu.Unlock()
	}
	s.next.Emit(e)
}

func (s *changeCounter) count(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes[host]
}
