package main

import (
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
)

// LockCmd groups the deploy lock commands.
type LockCmd struct {
	Status  LockStatusCmd  `cmd:"" help:"Show who holds each host's deploy lock, and any journal an interrupted run left."`
	Release LockReleaseCmd `cmd:"" help:"Let a host's deploy lock go (refused while its holder is alive, unless --force)."`
}

// LockStatusCmd shows the lock per host.
type LockStatusCmd struct {
	hostFlags
}

// LockReleaseCmd releases locks.
type LockReleaseCmd struct {
	hostFlags
	Force bool `help:"End a live holder: the host settles its run (undone, or completed past its point of no return) and the shipit that held it fails."`
}

func (c *LockStatusCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.LockStatus(g.ctx, g.stdout)
}

func (c *LockReleaseCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.LockRelease(g.ctx, g.stdout, c.Force)
}

// RecoverCmd settles what interrupted runs left on the hosts.
type RecoverCmd struct {
	hostFlags
	LockWait time.Duration `help:"Wait up to this long for another shipit's lock (e.g. 10m)."`
}

func (c *RecoverCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Env.LockWait = c.LockWait
	start := time.Now()
	results := s.Task(g.ctx, orchestrator.Task{Name: "recover"})
	s.Record(g.ctx, "recover", start, results)
	return orchestrator.Failed(results)
}
