package main

import (
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/internal/orchestrator"
	"github.com/shipit-dev/shipit/internal/releases"
)

// DeployCmd runs the deploy pipeline.
type DeployCmd struct {
	hostFlags
	LockWait time.Duration `help:"If another shipit holds a host's lock, wait up to this long (e.g. 10m) instead of failing; it prints who holds it."`
}

func (c *DeployCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.close()
	s.env.LockWait = c.LockWait
	start := time.Now()
	results := s.task(g.ctx, orchestrator.Task{Name: "deploy", Release: releases.Name(start)})
	s.auditRecord(g, "deploy", start, results)
	s.out.Summary(fmt.Sprintf("deploy to %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}
