package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/shipit-dev/shipit/app/session"
)

// DeployCmd runs the deploy pipeline, as a rollout over the hosts.
type DeployCmd struct {
	hostFlags
	LockWait      time.Duration `help:"If another shipit holds a host's lock, wait up to this long (e.g. 10m) instead of failing; it prints who holds it."`
	Batch         string        `help:"Deploy N hosts (or N% of them) at a time; a failed batch stops the rollout (default: [deploy.rollout] batch, else all at once)."`
	Wait          time.Duration `help:"Pause between batches (default: [deploy.rollout] wait)."`
	Atomic        bool          `help:"All hosts of a batch switch together: steps 1-8 everywhere, then 9-12 only if every host is healthy; one failure and none switch."`
	Canary        int           `help:"Deploy N hosts first, then wait for --canary-wait (and the shipit.lua \"canary\" task, if any) or a confirmation before the rest."`
	CanaryWait    time.Duration `help:"How long the canaries run before the rest roll out (unattended; without it a terminal asks). Over that time their numbers in Traefik are compared with the other hosts' and the gates of [deploy.verify]; a failed gate rolls the canaries back and stops."`
	Verify        time.Duration `help:"After the switch, watch the new release through Traefik's metrics this long and roll it back on a regression (default: [deploy.verify] window)."`
	NoVerify      bool          `help:"Do not watch the new release after the switch, whatever [deploy.verify] says."`
	Plan          bool          `help:"Show what the deploy would do on each host, changing nothing."`
	AllowUnrouted bool          `help:"Switch to the new release even on a host where no Traefik runs to route the stage's domain (a proxy of your own routes it); warns. Without it such a deploy fails before switching."`
}

func (c *DeployCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Deploy(g.ctx, session.DeployOptions{
		LockWait: c.LockWait, Batch: c.Batch, Wait: c.Wait, Atomic: c.Atomic,
		Canary: c.Canary, CanaryWait: c.CanaryWait, Confirm: terminalConfirm(g, "canaries run the new release; roll out to the other hosts?"),
		Verify: c.Verify, NoVerify: c.NoVerify, Plan: c.Plan, AllowUnrouted: c.AllowUnrouted,
	})
}

// terminalConfirm asks question on the terminal (y/N); nil without one.
func terminalConfirm(g *Globals, question string) func(context.Context) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil
	}
	return func(context.Context) (bool, error) {
		fmt.Fprintf(g.stdout, "%s [y/N] ", question)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return false, err
		}
		return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y"), nil
	}
}
