package session

import (
	"context"
	"fmt"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/metrics"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/releases"
)

// DeployOptions are deploy's flags.
type DeployOptions struct {
	LockWait      time.Duration
	Batch         string // N or N%; "" for [deploy.rollout] batch
	Wait          time.Duration
	Atomic        bool
	Canary        int
	CanaryWait    time.Duration
	Confirm       func(context.Context) (bool, error) // asks whether the canaries may be followed; nil: no terminal
	Verify        time.Duration
	NoVerify      bool
	Plan          bool
	AllowUnrouted bool
}

// Deploy runs the deploy pipeline as a rollout over the selected hosts
// (or shows its plan), records it in the hosts' audit logs and prints the
// summary.
func (s *Session) Deploy(ctx context.Context, c DeployOptions) error {
	ro, err := s.rollout(c)
	if err != nil {
		return err
	}
	sha, err := s.DeployChecks(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	release := releases.Name(start)
	s.Env.LockWait, s.Env.AllowUnrouted = c.LockWait, c.AllowUnrouted
	if c.Plan {
		return s.ShowPlan(ctx, "deploy", release, ro, sha)
	}
	results := s.Fleet.RunRollout(ctx, s.TaskOf(orchestrator.Task{Name: "deploy", Release: release}), ro)
	s.Record(ctx, "deploy", start, results)
	s.Fleet.ReadCurrent(context.WithoutCancel(ctx), s.Env.Config.AppPath(), results)
	s.Out.Summary(fmt.Sprintf("deploy to %s: %s", s.Env.Stage, time.Since(start).Round(10*time.Millisecond)), results)
	return orchestrator.Failed(results)
}

// rollout merges [deploy.rollout] with the flags.
func (s *Session) rollout(c DeployOptions) (orchestrator.Rollout, error) {
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
		Logf:       func(f string, a ...any) { fmt.Fprintf(s.Proj.opts.Stdout, "rollout: "+f+"\n", a...) },
	}
	if c.Wait > 0 {
		ro.Wait = c.Wait
	}
	undo := func(ctx context.Context, hosts []orchestrator.Host) []orchestrator.Result {
		sub := *s.Fleet
		sub.Hosts = hosts
		return sub.RunTask(ctx, s.TaskOf(orchestrator.Task{Name: "rollback"}))
	}
	if vf := s.verifier(c); vf != nil {
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
			if c.Confirm == nil {
				return ro, hint.New("--canary needs a decision: no terminal to ask on",
					"pass --canary-wait DURATION (and define a \"canary\" task in shipit.lua for a go/no-go check)")
			}
			ro.Confirm = c.Confirm
		}
		ro.Undo = undo
	}
	return ro, nil
}

// verifier is the check after the switch ([deploy.verify] and the flags),
// or nil when it is off.
func (s *Session) verifier(c DeployOptions) *orchestrator.MetricsVerifier {
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
		Logf: func(f string, a ...any) { fmt.Fprintf(s.Proj.opts.Stdout, f+"\n", a...) },
	}
}
