package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/accessory"
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

// AccessoryError lists the accessories whose action failed; Errs keeps the
// causes so their hints reach the user.
type AccessoryError struct {
	Action string
	Failed []string
	Errs   []error
}

func (e *AccessoryError) Unwrap() []error { return e.Errs }

func (e *AccessoryError) Error() string {
	if len(e.Errs) == 1 {
		return fmt.Sprintf("accessory %s %s: %v", e.Action, e.Failed[0], e.Errs[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "accessory %s failed for %s:", e.Action, strings.Join(e.Failed, ", "))
	for i, err := range e.Errs {
		fmt.Fprintf(&b, "\n%s: %v", e.Failed[i], err)
	}
	return b.String()
}

// runAccessories runs accessory:<action> for the named accessory (or all
// of them, sorted) on the hosts each one lives on. Accessories go one after
// the other, hosts in parallel; with concurrent (logs -f) all at once.
func runAccessories(g *Globals, t accessoryTarget, action string, params map[string]string, concurrent bool) error {
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	cfg := p.Cfg
	stage, err := orchestrator.PickStage(cfg, t.Stage)
	if err != nil {
		return err
	}
	names, err := orchestrator.AccessoryNames(cfg, t.Name)
	if err != nil {
		return err
	}
	// Validate every accessory and find its hosts before connecting anywhere.
	hostsOf := map[string][]orchestrator.Host{}
	var all []orchestrator.Host
	for _, n := range names {
		if _, err := accessory.Build(cfg.App.Name, stage, n, cfg.Accessories[n]); err != nil {
			return err
		}
		if hostsOf[n], err = orchestrator.AccessoryHosts(cfg, stage, cfg.Accessories[n].Host, t.Hosts); err != nil {
			return err
		}
		all = append(all, hostsOf[n]...)
	}
	s := g.on(p, stage, all, 0)
	defer s.Close()
	if err := s.RefuseShortSecrets(); err != nil {
		return err
	}
	run := func(name string) error {
		fleet := *s.Fleet
		fleet.Hosts = hostsOf[name]
		ps := map[string]string{"accessory": name, "multi": strconv.FormatBool(len(names) > 1)}
		for k, v := range params {
			ps[k] = v
		}
		return orchestrator.Failed(fleet.RunTask(g.ctx, orchestrator.Task{Name: "accessory:" + action, Env: s.Env, Scripts: p.Scripts, Params: ps}))
	}
	errs := make([]error, len(names))
	if concurrent {
		done := make(chan struct{})
		for i, n := range names {
			go func() {
				defer func() { done <- struct{}{} }()
				errs[i] = run(n)
			}()
		}
		for range names {
			<-done
		}
	} else {
		for i, n := range names {
			if g.ctx.Err() != nil {
				errs[i] = g.ctx.Err()
				continue
			}
			errs[i] = run(n)
		}
	}
	ae := &AccessoryError{Action: action}
	for i, err := range errs {
		if err != nil {
			ae.Failed = append(ae.Failed, names[i])
			ae.Errs = append(ae.Errs, err)
		}
	}
	if len(ae.Errs) > 0 {
		return ae
	}
	return nil
}
