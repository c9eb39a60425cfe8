package session

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/plan"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

// ShowPlan prints what a deploy or a rollback would do on each host:
// read-only there (it runs no step, takes no lock, writes nothing). newSHA
// is the commit a deploy sends, when DeployChecks found it.
func (s *Session) ShowPlan(ctx context.Context, command, release string, ro orchestrator.Rollout, newSHA string) error {
	cfg := s.Env.Config
	if command == "deploy" && newSHA == "" {
		out, err := exec.CommandContext(ctx, "git", "-C", s.Proj.Dir, "rev-parse", "--verify", cfg.App.Branch+"^{commit}").Output()
		if err != nil {
			return fmt.Errorf("local: git rev-parse %s: %w", cfg.App.Branch, err)
		}
		newSHA = strings.TrimSpace(string(out))
	}
	if command == "deploy" && s.Env.SecretsErr != nil {
		fmt.Fprintf(s.Proj.opts.Stderr, "shipit: warning: secrets not readable (%v): env changes from secrets are not shown\n", s.Env.SecretsErr)
	}
	plans, results := s.readPlans(ctx, command, release, newSHA)
	w := s.Proj.opts.Stdout
	fmt.Fprintf(w, "%s plan for %s (nothing was changed)\n", command, s.Env.Stage)
	hs := s.Env.Health()
	fmt.Fprintf(w, "\nhealth check: %s every %s (probe timeout %s); the new release has %s to become healthy\n",
		hs.Describe(), hs.Interval, hs.ProbeTimeout, hs.Timeout)
	s.printRollout(w, ro)
	printVerify(w, ro)
	for _, r := range results {
		fmt.Fprintf(w, "\n%s\n", r.Host)
		if r.Err != nil {
			fmt.Fprintf(w, "  cannot plan: %s\n", text.FirstLine(r.Err.Error()))
			continue
		}
		s.printHostPlan(w, command, plans[r.Host])
	}
	hooks := s.hookPlan(command)
	if len(hooks) > 0 {
		fmt.Fprintln(w, "\nfrom shipit.lua, on every host:")
		for _, l := range hooks {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return orchestrator.Failed(results)
}

// readPlans reads, on every host at once, what the command would change.
func (s *Session) readPlans(ctx context.Context, command, release, newSHA string) (map[string]plan.Host, []orchestrator.Result) {
	cfg := s.Env.Config
	appPath := cfg.AppPath()
	stageEnv := cfg.Stages[s.Env.Stage].Env
	var mu sync.Mutex
	plans := map[string]plan.Host{}
	results := s.Fleet.Each(ctx, func(ctx context.Context, h orchestrator.Host, c remote.Conn) orchestrator.Result {
		var p plan.Host
		var err error
		if command == "deploy" {
			p, err = plan.Deploy(ctx, c, appPath, s.Proj.Dir, newSHA, stageEnv, s.Env.Secrets)
			p.Target = release
		} else {
			p, err = plan.Rollback(ctx, c, appPath, s.Proj.Dir, release)
		}
		mu.Lock()
		plans[h.Name] = p
		mu.Unlock()
		return orchestrator.Result{Err: err}
	})
	return plans, results
}

// printRollout shows the batches when there are several (or --atomic).
func (s *Session) printRollout(w io.Writer, ro orchestrator.Rollout) {
	batches := ro.Batches(s.Fleet.Hosts)
	if len(batches) <= 1 && !ro.Atomic {
		return
	}
	fmt.Fprintln(w, "\nrollout:")
	for i, b := range batches {
		kind := "batch"
		if i == 0 && ro.Canary > 0 {
			kind = "canary"
		}
		fmt.Fprintf(w, "  %s %d: %s\n", kind, i+1, hostNames(b))
	}
	if ro.Atomic {
		fmt.Fprintln(w, "  atomic: every host of a batch is healthy before any of them switches")
	}
	if ro.Wait > 0 {
		fmt.Fprintf(w, "  wait %s between batches\n", ro.Wait)
	}
}

// printVerify shows what is watched after the switch and its gates.
func printVerify(w io.Writer, ro orchestrator.Rollout) {
	v, ok := ro.Verify.(*orchestrator.MetricsVerifier)
	if !ok || v == nil {
		return
	}
	if v.Window > 0 {
		fmt.Fprintf(w, "\nverify after the switch: watch %s through Traefik's metrics for %s (a line every %s)\n", v.Service, v.Window, v.Interval)
	} else {
		fmt.Fprintf(w, "\nverify the canaries: watch %s through Traefik's metrics for %s (a line every %s)\n", v.Service, v.CanaryWindow, v.Interval)
	}
	if v.Canary > 0 {
		fmt.Fprintf(w, "  canaries: %s against the other hosts over the same time\n", v.CanaryWindow)
	}
	fmt.Fprintf(w, "  roll back when 5xx > %.1f%%", v.Gate.MaxErrorRate*100)
	if v.Gate.MaxP95Ratio > 0 {
		fmt.Fprintf(w, " or p95 > %.1fx the previous release's", v.Gate.MaxP95Ratio)
	}
	fmt.Fprintf(w, "; fewer than %d requests: ", v.Gate.MinRequests)
	if v.Gate.RequireTraffic {
		fmt.Fprint(w, "roll back")
	} else {
		fmt.Fprint(w, "warn")
	}
	if v.RequireMetrics {
		fmt.Fprintln(w, "; no metrics: roll back")
	} else {
		fmt.Fprintln(w, "; no metrics: warn and skip")
	}
}

// printHostPlan shows one host's plan.
func (s *Session) printHostPlan(w io.Writer, command string, p plan.Host) {
	fmt.Fprintf(w, "  release     %s -> %s\n", orNone(p.Current), p.Target)
	fmt.Fprintf(w, "  commit      %s -> %s\n", orNone(text.Short(p.CurrentSHA)), orNone(text.Short(p.TargetSHA)))
	if p.CommitsErr != "" {
		fmt.Fprintf(w, "              (%s)\n", p.CommitsErr)
	}
	for _, c := range p.Commits {
		fmt.Fprintf(w, "              %s\n", c)
	}
	if command == "deploy" {
		if s.Env.Config.Deploy.Build == "local" {
			fmt.Fprintln(w, "  images      built here, then only the layers the host lacks are sent")
		} else {
			fmt.Fprintln(w, "  images      built on the host (docker compose build)")
		}
	}
	env := envLine("added", p.EnvAdded) + envLine("changed", p.EnvChanged) + envLine("removed", p.EnvRemoved)
	if env == "" {
		env = " unchanged"
	}
	fmt.Fprintf(w, "  env        %s\n", env)
	if l := routingLine(s.Env, p.Proxy, command); l != "" {
		fmt.Fprintf(w, "  routing     %s\n", l)
	}
	if p.Locked != "" {
		fmt.Fprintf(w, "  lock        held now: %s\n", p.Locked)
	}
}

// hookPlan lists, step by step, what shipit.lua adds to the pipeline.
func (s *Session) hookPlan(task string) []string {
	p := s.Proj.Plan()
	t, ok := p.Tasks[task]
	if !ok {
		return nil
	}
	var out []string
	user := func(src string) bool { return !strings.HasPrefix(src, "recipes/") }
	for _, step := range t.Steps {
		for _, hk := range p.Before[step] {
			if user(hk.Source) {
				kind := "before"
				if hk.Once {
					kind = "once  "
				}
				out = append(out, fmt.Sprintf("%-22s %s %s", step, kind, hk.Source))
			}
		}
		if st := p.Tasks[step]; st != nil && st.Replaced != "" {
			out = append(out, fmt.Sprintf("%-22s replaced by %s", step, st.Source))
		}
		for _, hk := range p.After[step] {
			if user(hk.Source) {
				out = append(out, fmt.Sprintf("%-22s after  %s", step, hk.Source))
			}
		}
	}
	for _, hk := range p.OnFailure {
		if user(hk.Source) && (hk.Task == "" || hk.Task == task) {
			out = append(out, fmt.Sprintf("%-22s %s", "on failure", hk.Source))
		}
	}
	return out
}

// routingLine says how the release would be routed, and when the command
// would fail for lack of a Traefik (the routed wait's rule).
func routingLine(env *runtime.Env, proxy bool, command string) string {
	domain, allow := env.Routing()
	switch {
	case proxy && domain != "":
		return "Traefik routes " + domain
	case proxy:
		return "Traefik runs (no domain set)"
	case domain == "":
		return "no traefik container: nothing may route the release (a warning)"
	case allow:
		return "no traefik container: switches anyway (allow_unrouted / --allow-unrouted), with a warning"
	}
	return fmt.Sprintf("no traefik container: the %s FAILS before switching (nothing routes %s); run `shipit setup`, or pass --allow-unrouted", command, domain)
}

func envLine(what string, keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return fmt.Sprintf(" %s %s;", what, strings.Join(keys, ", "))
}

func hostNames(hs []orchestrator.Host) string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Name)
	}
	return strings.Join(n, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
