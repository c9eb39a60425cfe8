package main

import (
	"fmt"
	"strconv"

	"github.com/shipit-dev/shipit/app/session"
	"github.com/shipit-dev/shipit/internal/hint"
)

// AccessoryCmd groups the accessory actions. Each runs the Lua task
// accessory:<action> (recipes/accessory.lua) once per accessory, on the
// hosts that accessory lives on.
type AccessoryCmd struct {
	Boot    AccessoryBootCmd    `cmd:"" help:"Boot accessories: start them, or recreate them when shipit.toml changed (idempotent)."`
	Stop    AccessoryStopCmd    `cmd:"" help:"Stop accessories' containers (kept, with their volumes)."`
	Restart AccessoryRestartCmd `cmd:"" help:"Restart accessories' containers."`
	Logs    AccessoryLogsCmd    `cmd:"" help:"Show accessories' logs, prefixed per host."`
	Details AccessoryDetailsCmd `cmd:"" help:"Show accessories' state, image, ports and volumes."`
	Remove  AccessoryRemoveCmd  `cmd:"" help:"Remove accessories' containers (named volumes only with --volumes)."`
}

// accessoryTarget is what every action takes.
type accessoryTarget struct {
	Name  string   `arg:"" optional:"" help:"Accessory name from [accessories.NAME] (default: all, in name order)."`
	Stage string   `short:"s" help:"Stage whose SSH settings (user, port, proxy) and hosts are used (may be omitted when shipit.toml has one stage)."`
	Hosts []string `name:"hosts" sep:"," placeholder:"PATTERN" help:"Only hosts whose address matches a PATTERN (shell glob); comma-separated."`
}

type AccessoryBootCmd struct{ accessoryTarget }
type AccessoryStopCmd struct{ accessoryTarget }
type AccessoryRestartCmd struct{ accessoryTarget }
type AccessoryDetailsCmd struct{ accessoryTarget }

type AccessoryLogsCmd struct {
	accessoryTarget
	Follow bool   `short:"f" help:"Follow the logs until Ctrl-C."`
	Tail   string `short:"n" default:"100" help:"Lines from the end of each log (a number, or \"all\")."`
	Since  string `help:"Only logs since a timestamp (2026-11-25T20:00:00) or a duration (10m)."`
}

type AccessoryRemoveCmd struct {
	accessoryTarget
	Volumes bool `help:"Also delete the accessory's named volumes (their data is lost)."`
}

func (c *AccessoryBootCmd) Run(g *Globals) error {
	return runAccessories(g, c.accessoryTarget, "boot", nil, false)
}

func (c *AccessoryStopCmd) Run(g *Globals) error {
	return runAccessories(g, c.accessoryTarget, "stop", nil, false)
}

func (c *AccessoryRestartCmd) Run(g *Globals) error {
	return runAccessories(g, c.accessoryTarget, "restart", nil, false)
}

func (c *AccessoryDetailsCmd) Run(g *Globals) error {
	return runAccessories(g, c.accessoryTarget, "details", nil, false)
}

func (c *AccessoryLogsCmd) Run(g *Globals) error {
	if c.Tail != "all" {
		if n, err := strconv.Atoi(c.Tail); err != nil || n < 0 {
			return hint.New(fmt.Sprintf("--tail %q is not a number of lines", c.Tail), "use --tail 100, or --tail all")
		}
	}
	params := map[string]string{"tail": c.Tail, "since": c.Since, "follow": strconv.FormatBool(c.Follow)}
	err := runAccessories(g, c.accessoryTarget, "logs", params, c.Follow)
	if c.Follow && g.ctx.Err() != nil {
		return nil // Ctrl-C ends following; that is not a failure
	}
	return err
}

func (c *AccessoryRemoveCmd) Run(g *Globals) error {
	return runAccessories(g, c.accessoryTarget, "remove", map[string]string{"volumes": strconv.FormatBool(c.Volumes)}, false)
}

// runAccessories runs accessory:<action> for the named accessory (or all
// of them) on the hosts each one lives on (app/session).
func runAccessories(g *Globals, t accessoryTarget, action string, params map[string]string, concurrent bool) error {
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	pick, err := session.PickAccessories(p.Cfg, t.Name, t.Stage, t.Hosts)
	if err != nil {
		return err
	}
	s := g.on(p, pick.Stage, pick.All, 0)
	defer s.Close()
	return s.Accessories(g.ctx, pick, action, params, concurrent)
}
