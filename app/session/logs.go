package session

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

var sinceRe = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$|^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$|^[0-9]+$`)

// LogsOptions are the logs command's flags.
type LogsOptions struct {
	Service string // "" for all
	Follow  bool
	Tail    int // -1 for all
	Since   string
}

// Check refuses a --since that is neither a duration nor a timestamp.
func (c LogsOptions) Check() error {
	if c.Since != "" && !sinceRe.MatchString(c.Since) {
		return hint.New(fmt.Sprintf("--since %q is neither a duration nor a timestamp", c.Since),
			"use a duration like 10m or 2h30m, or a timestamp like 2026-11-25T20:00:00")
	}
	return nil
}

// Logs prints the logs of the current release's containers on every
// selected host (app:logs of recipes/ops.lua); a host whose containers
// printed nothing says so.
func (s *Session) Logs(ctx context.Context, c LogsOptions) error {
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
	results := s.Task(ctx, orchestrator.Task{Name: "app:logs", AtCurrent: true})
	for _, r := range results {
		if r.Err == nil && lines[r.Host] == 0 {
			printer.Emit(runtime.Event{Host: r.Host, Kind: runtime.Info, Text: noLogLines(c, r.Release)})
		}
	}
	if c.Follow && ctx.Err() != nil {
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
func noLogLines(c LogsOptions, release string) string {
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
