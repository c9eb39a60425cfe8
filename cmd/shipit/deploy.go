package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/shipit-dev/shipit/app/session"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/metrics"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/releases"
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
	ro, err := c.rollout(g, s)
	if err != nil {
		return err
	}
	sha, err := s.DeployChecks(g.ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	release := releases.Name(start)
	s.Env.LockWait, s.Env.AllowUnrouted = c.LockWait, c.AllowUnrouted
	if c.Plan {
		return s.ShowPlan(g.ctx, "deploy", release, ro, sha)
	}
	results := s.Fleet.RunRollout(g.ctx, s.TaskOf(orchestrator.Task{Name: "deploy", Release: release}), ro)
	s.Record(g.ctx, "deploy", start, results)
	s.Fleet.ReadCurrent(context.WithoutCancel(g.ctx), s.Env.Config.AppPath(), results)
	s.Out.Summary(fmt.Sprintf("deploy to %s: %s", c.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}

// rollout merges [deploy.rollout] with the flags.
func (c *DeployCmd) rollout(g *Globals, s *session.Session) (orchestrator.Rollout, error) {
	cfg := s.Env.Config.Deploy.Rollout
	batch := cfg.Batch
	if c.Batch != "" {
		b, err := config.ParseBatch(c.Batch)
		if err != nil {
			return orchestrator.Rollout{}, err
		}
		batch = b
	}
	ro := orchestrator.Rollout{
		Batch:      batch.Size,
		Wait:       time.Duration(cfg.Wait),
		Atomic:     cfg.Atomic || c.Atomic,
		Canary:     c.Canary,
		CanaryWait: c.CanaryWait,
		Logf:       func(f string, a ...any) { fmt.Fprintf(g.stdout, "rollout: "+f+"\n", a...) },
	}
	if c.Wait > 0 {
		ro.Wait = c.Wait
	}
	undo := func(ctx context.Context, hosts []orchestrator.Host) []orchestrator.Result {
		sub := *s.Fleet
		sub.Hosts = hosts
		return sub.RunTask(ctx, s.TaskOf(orchestrator.Task{Name: "rollback"}))
	}
	if vf := c.verifier(g, s); vf != nil {
		ro.Verify, ro.Undo = vf, undo
		// The deploy's on_failure hooks (notifications) hear of a verify
		// failure like of any other.
		ro.Failed = func(ctx context.Context, hosts []orchestrator.Host, errs map[string]error) {
			for _, h := range hosts {
				sub := *s.Fleet
				sub.Hosts = []orchestrator.Host{h}
				sub.RunTask(ctx, s.TaskOf(orchestrator.Task{Name: "deploy", FailedAfter: errs[h.Name], FailedStep: "verify", AtCurrent: true}))
			}
		}
		// The canaries are watched (and compared) for the wait.
		ro.CanaryWatched = vf.Canary > 0
	}
	if c.Canary < 0 || (c.Canary > 0 && c.Canary >= len(s.Fleet.Hosts)) {
		return ro, hint.New(fmt.Sprintf("--canary %d: the stage has %d selected host(s)", c.Canary, len(s.Fleet.Hosts)),
			"canaries are some of the hosts: use fewer than all of them")
	}
	if c.Canary > 0 {
		if _, ok := s.Proj.Plan().Tasks["canary"]; ok {
			ro.Check = func(ctx context.Context, canaries []orchestrator.Host) error {
				sub := *s.Fleet
				sub.Hosts = canaries
				return orchestrator.Failed(sub.RunTask(ctx, s.TaskOf(orchestrator.Task{Name: "canary", AtCurrent: true})))
			}
		}
		if c.CanaryWait == 0 {
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				return ro, hint.New("--canary needs a decision: no terminal to ask on",
					"pass --canary-wait DURATION (and define a \"canary\" task in shipit.lua for a go/no-go check)")
			}
			ro.Confirm = func(ctx context.Context) (bool, error) {
				fmt.Fprintf(g.stdout, "canaries run the new release; roll out to the other hosts? [y/N] ")
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil {
					return false, err
				}
				return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y"), nil
			}
		}
		ro.Undo = undo
	}
	return ro, nil
}

// verifier is the check after the switch ([deploy.verify] and the flags),
// or nil when it is off.
func (c *DeployCmd) verifier(g *Globals, s *session.Session) *orchestrator.MetricsVerifier {
	v := s.Env.Config.Deploy.Verify
	window := time.Duration(v.Window)
	if c.Verify > 0 {
		window = c.Verify
	}
	canary := c.Canary > 0 && c.CanaryWait > 0
	if c.NoVerify || (window <= 0 && !canary) {
		return nil
	}
	_, service := override.RouteNames(override.Params{App: s.Env.Config.App.Name, Stage: s.Env.Stage})
	return &orchestrator.MetricsVerifier{
		Fleet:   s.Fleet,
		Service: service,
		Gate: metrics.Gate{MaxErrorRate: v.MaxErrorRate, MaxP95Ratio: v.MaxP95Ratio,
			MinRequests: v.MinRequests, RequireTraffic: v.RequireTraffic},
		Window: window, Interval: time.Duration(v.Interval), RequireMetrics: v.RequireMetrics,
		Canary: c.Canary, CanaryWindow: c.CanaryWait,
		Logf: func(f string, a ...any) { fmt.Fprintf(g.stdout, f+"\n", a...) },
	}
}
