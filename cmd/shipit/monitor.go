package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/monitor"
)

// MonitorCmd is the live dashboard (or one snapshot) of a stage.
type MonitorCmd struct {
	hostFlags
	Once     bool          `help:"Print one snapshot as text and exit."`
	JSON     bool          `name:"json" help:"Print one snapshot as JSON and exit (with or without --once)."`
	Interval time.Duration `default:"2s" help:"Refresh interval of the live dashboard."`
	Timeout  time.Duration `default:"20s" help:"Per-host limit for one collection; a host slower than this is shown as unreachable."`
}

// monitorError is returned when hosts could not be reached by --once/--json
// (after the snapshot was printed), so scripts can alert on the exit code.
type monitorError struct {
	down, total int
	hosts       []string
	stage       string
}

func (e *monitorError) Error() string {
	return fmt.Sprintf("%d of %d host(s) unreachable: %s", e.down, e.total, strings.Join(e.hosts, ", "))
}

func (e *monitorError) Hint() string {
	return fmt.Sprintf("check that the host is up and that `shipit exec -s %s -- true` can log in", e.stage)
}

func (c *MonitorCmd) Run(g *Globals) error {
	if c.Interval < 100*time.Millisecond {
		return fmt.Errorf("--interval %s is too short: use at least 100ms (default 2s)", c.Interval)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", c.Timeout)
	}
	live := !c.Once && !c.JSON
	var out *os.File
	if live {
		f, ok := g.stdout.(*os.File)
		if !ok || !monitor.IsTerminal(f) || !monitor.IsTerminal(os.Stdin) {
			return hint.New("the live dashboard needs a terminal (stdin and stdout)", "pass --once for a text snapshot or --json for a machine-readable one")
		}
		out = f
	}
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	hosts, err := orchestrator.Select(p.Cfg, c.Stage, c.Hosts)
	if err != nil {
		return err
	}
	spec := monitor.Spec{App: p.Cfg.App.Name, Stage: c.Stage, DeployTo: p.Cfg.Deploy.DeployTo}
	for name := range p.Cfg.Accessories {
		spec.Accessories = append(spec.Accessories, name)
	}
	sort.Strings(spec.Accessories)
	pool := g.pool()
	defer pool.Close()
	fleet := &orchestrator.Fleet{Hosts: hosts, Dialer: orchestrator.SSH(pool), Parallel: c.Parallel}
	var srcs []monitor.Source
	index := map[string]int{}
	for i, h := range hosts {
		index[h.Name] = i
		srcs = append(srcs, monitor.Source{
			Name: h.Name,
			Dial: func(ctx context.Context) (monitor.Conn, error) { return fleet.Dial(ctx, h) },
		})
	}
	each := func(ctx context.Context, fn func(ctx context.Context, i int)) {
		fleet.EachHost(ctx, func(ctx context.Context, h orchestrator.Host) orchestrator.Result {
			fn(ctx, index[h.Name])
			return orchestrator.Result{}
		})
	}
	if live {
		w := &monitor.Watcher{Spec: spec, Sources: srcs, Interval: c.Interval, Timeout: c.Timeout, FullEvery: 30 * time.Second}
		return monitor.RunTUI(g.ctx, w, each, os.Stdin, out)
	}
	snap := monitor.Collect(g.ctx, each, spec, srcs, c.Timeout)
	if err := g.ctx.Err(); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if c.JSON {
		b, err := json.MarshalIndent(snap, "", "  ")
		if err != nil {
			return fmt.Errorf("monitor: encoding JSON: %w", err)
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(g.stdout, "%s · stage %s · %s\n\n", spec.App, spec.Stage, snap.CollectedAt.Local().Format("2006-01-02 15:04:05"))
		width := 0 // no limit when piped
		if f, ok := g.stdout.(*os.File); ok {
			width = monitor.Width(f)
		}
		for _, l := range monitor.Render(snap, width, time.Now()) {
			fmt.Fprintln(g.stdout, l)
		}
	}
	if down := snap.Unreachable(); len(down) > 0 {
		return &monitorError{down: len(down), total: len(snap.Hosts), hosts: down, stage: c.Stage}
	}
	return nil
}
