package session

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
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
	// The recipe's deploy:plan (rollback:plan) reads each host, changing
	// nothing, and reports what it found; a shipit.lua may hook it.
	s.Env.Params = map[string]string{"release": release, "sha": newSHA}
	s.Out.QuietSteps, s.Out.QuietReports = true, true
	results := s.Task(ctx, orchestrator.Task{Name: command + ":plan"})
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
		printItems(w, r.Report)
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

// printItems shows a host's plan as its task reported it: one item a
// line, its detail's further lines indented under the first.
func printItems(w io.Writer, items []runtime.ReportItem) {
	for _, it := range items {
		lines := strings.Split(it.Detail, "\n")
		fmt.Fprintf(w, "  %-11s %s\n", it.Item, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %-11s %s\n", "", l)
		}
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

func hostNames(hs []orchestrator.Host) string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Name)
	}
	return strings.Join(n, ", ")
}
