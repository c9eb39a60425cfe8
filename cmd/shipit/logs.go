package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/compose"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/runtime"
)

// LogsCmd shows the logs of the current release's containers on every host
// (the app:logs task of recipes/ops.lua).
type LogsCmd struct {
	hostFlags
	Service string `arg:"" optional:"" help:"Only this compose service (default: all)."`
	Follow  bool   `short:"f" help:"Keep streaming new lines from every host until Ctrl-C."`
	Tail    int    `short:"n" default:"-1" help:"Only the last N lines per container (default: all)."`
	Since   string `help:"Only lines since a duration ago (10m, 2h) or a timestamp (2026-11-25T20:00:00)."`
}

var sinceRe = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$|^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$|^[0-9]+$`)

func (c *LogsCmd) Run(g *Globals) error {
	if c.Since != "" && !sinceRe.MatchString(c.Since) {
		return hint.New(fmt.Sprintf("--since %q is neither a duration nor a timestamp", c.Since),
			"use a duration like 10m or 2h30m, or a timestamp like 2026-11-25T20:00:00")
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if c.Service != "" {
		if err := compose.CheckService(s.Proj.Dir, s.Env.Config.Deploy.ComposeFile, c.Service); err != nil {
			return err
		}
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
	s.Env.Params = params
	// Count the lines each host printed: a host with none says so, rather
	// than leaving a silence that looks like a hang or a bug.
	var mu sync.Mutex
	lines := map[string]int{}
	printer := s.Env.Sink
	s.Env.Sink = runtime.SinkFunc(func(e runtime.Event) {
		if e.Kind == runtime.Info {
			mu.Lock()
			lines[e.Host]++
			mu.Unlock()
		}
		printer.Emit(e)
	})
	results := s.Task(g.ctx, orchestrator.Task{Name: "app:logs", AtCurrent: true})
	for _, r := range results {
		if r.Err == nil && lines[r.Host] == 0 {
			printer.Emit(runtime.Event{Host: r.Host, Kind: runtime.Info, Text: noLogLines(c, r.Release)})
		}
	}
	if c.Follow && g.ctx.Err() != nil {
		// Ctrl-C is how a follow ends; only earlier failures (a host
		// without a release, unreachable) are errors.
		var kept []orchestrator.Result
		for _, r := range results {
			if r.Err != nil && !errors.Is(r.Err, context.Canceled) {
				kept = append(kept, r)
			}
		}
		return orchestrator.Failed(kept)
	}
	return orchestrator.Failed(results)
}

// noLogLines says that a host's containers printed nothing, and within
// which limits.
func noLogLines(c *LogsCmd, release string) string {
	msg := "no log lines"
	if c.Service != "" {
		msg += " from " + c.Service
	}
	if release != "" {
		msg += " in release " + release
	}
	var within []string
	if c.Since != "" {
		within = append(within, "since "+c.Since)
	}
	if c.Tail >= 0 {
		within = append(within, fmt.Sprintf("--tail %d", c.Tail))
	}
	if len(within) > 0 {
		msg += " (" + strings.Join(within, ", ") + ")"
	}
	return msg
}
