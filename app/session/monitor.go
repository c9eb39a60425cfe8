package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/monitor"
	"github.com/shipit-dev/shipit/sshpool"
)

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

// MonitorOptions are monitor's flags.
type MonitorOptions struct {
	Stage             string
	Hosts             []string
	Parallel          int
	Once, JSON        bool
	Interval, Timeout time.Duration
}

// Monitor shows the stage's hosts: a live dashboard on a terminal, or one
// snapshot as text (Once) or JSON; it fails when hosts were unreachable.
func (p *Project) Monitor(ctx context.Context, c MonitorOptions, stdin *os.File, stdout io.Writer) error {
	if c.Interval < 100*time.Millisecond {
		return fmt.Errorf("--interval %s is too short: use at least 100ms (default 2s)", c.Interval)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", c.Timeout)
	}
	live := !c.Once && !c.JSON
	var out *os.File
	if live {
		f, ok := stdout.(*os.File)
		if !ok || !monitor.IsTerminal(f) || !monitor.IsTerminal(stdin) {
			return hint.New("the live dashboard needs a terminal (stdin and stdout)", "pass --once for a text snapshot or --json for a machine-readable one")
		}
		out = f
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
	pool := sshpool.New(p.opts.SSH)
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
		return monitor.RunTUI(ctx, w, each, stdin, out)
	}
	snap := monitor.Collect(ctx, each, spec, srcs, c.Timeout)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if c.JSON {
		b, err := json.MarshalIndent(snap, "", "  ")
		if err != nil {
			return fmt.Errorf("monitor: encoding JSON: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintf(stdout, "%s · stage %s · %s\n\n", spec.App, spec.Stage, snap.CollectedAt.Local().Format("2006-01-02 15:04:05"))
		width := 0 // no limit when piped
		if f, ok := stdout.(*os.File); ok {
			width = monitor.Width(f)
		}
		for _, l := range monitor.Render(snap, width, time.Now()) {
			fmt.Fprintln(stdout, l)
		}
	}
	if down := snap.Unreachable(); len(down) > 0 {
		return &monitorError{down: len(down), total: len(snap.Hosts), hosts: down, stage: c.Stage}
	}
	return nil
}
