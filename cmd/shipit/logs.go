package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/fleet"
)

// LogsCmd shows the logs of the current release's containers on every host
// (the app:logs task of recipes/ops.lua).
type LogsCmd struct {
	Stage   string `short:"s" required:"" help:"Stage to read from."`
	Service string `arg:"" optional:"" help:"Only this compose service (default: all)."`
	Follow  bool   `short:"f" help:"Keep streaming new lines from every host until Ctrl-C."`
	Tail    int    `short:"n" default:"-1" help:"Only the last N lines per container (default: all)."`
	Since   string `help:"Only lines since a duration ago (10m, 2h) or a timestamp (2026-11-25T20:00:00)."`
	Host    string `help:"Only this host (as written in shipit.toml)."`
}

var sinceRe = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$|^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$|^[0-9]+$`)

func (c *LogsCmd) Run(g *Globals) error {
	if c.Since != "" && !sinceRe.MatchString(c.Since) {
		return opsHint{fmt.Errorf("--since %q is neither a duration nor a timestamp", c.Since),
			"use a duration like 10m or 2h30m, or a timestamp like 2026-11-25T20:00:00"}
	}
	run, _, pool, err := g.stageRun(c.Stage, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := onlyHost(run, c.Host); err != nil {
		return err
	}
	params := map[string]string{}
	if c.Service != "" {
		params["service"] = c.Service
	}
	if c.Tail >= 0 {
		params["tail"] = strconv.Itoa(c.Tail)
	}
	if c.Since != "" {
		params["since"] = c.Since
	}
	if c.Follow {
		params["follow"] = "1"
	}
	run.Env.Params = params
	run.CurrentRelease = true
	results := run.Task(g.ctx, "app:logs")
	if c.Follow && g.ctx.Err() != nil {
		// Ctrl-C is how a follow ends; only earlier failures (a host
		// without a release, unreachable) are errors.
		var kept []fleet.HostResult
		for _, r := range results {
			if r.Err != nil && !errors.Is(r.Err, context.Canceled) {
				kept = append(kept, r)
			}
		}
		return fleet.Failed(kept)
	}
	return fleet.Failed(results)
}

// onlyHost narrows the run to one host of its stage (--host), leaving the
// loaded config untouched for everything else.
func onlyHost(run *fleet.Run, host string) error {
	if host == "" {
		return nil
	}
	cfg := *run.Env.Config
	st := *cfg.Stages[run.Env.Stage]
	var names []string
	for _, h := range st.Hosts {
		if h.Address == host {
			st.Hosts = []config.Host{h}
			cfg.Stages = map[string]*config.Stage{}
			for k, v := range run.Env.Config.Stages {
				cfg.Stages[k] = v
			}
			cfg.Stages[run.Env.Stage] = &st
			run.Env.Config = &cfg // the Env belongs to this command's run
			return nil
		}
		names = append(names, h.Address)
	}
	return opsHint{fmt.Errorf("host %q is not in stage %s", host, run.Env.Stage),
		fmt.Sprintf("use one of the stage's hosts as written in shipit.toml: %v", names)}
}

// opsHint is a user error with the fix.
type opsHint struct {
	err  error
	hint string
}

func (e opsHint) Error() string { return e.err.Error() }
func (e opsHint) Unwrap() error { return e.err }
func (e opsHint) Hint() string  { return e.hint }
