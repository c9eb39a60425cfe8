package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/ui"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// DoctorCmd runs the "doctor" Lua pipeline (recipes/doctor.lua) on every
// host and prints its checklist grouped per host, then a summary.
type DoctorCmd struct {
	Stage    string `short:"s" required:"" help:"Stage to check (a [stages.NAME] of shipit.toml)."`
	Parallel int    `default:"0" help:"Check at most N hosts at once (0: all)."`
}

// DoctorError says how many hosts have failed checks; the checklist above
// it has the details and fixes.
type DoctorError struct {
	Failed, Total int
}

func (e *DoctorError) Error() string {
	return fmt.Sprintf("doctor: %d of %d host(s) have failed checks", e.Failed, e.Total)
}

// Hint points at the fixes printed with each failed item.
func (e *DoctorError) Hint() string {
	return "each ✗ above is followed by its fix; rerun `shipit doctor` after fixing"
}

func (c *DoctorCmd) Run(g *Globals) error {
	run, printer, pool, err := g.stageRun(c.Stage, c.Parallel)
	if err != nil {
		return err
	}
	defer pool.Close()
	col := &hostCollector{lines: map[string][]string{}, live: printer, verbose: g.Verbose}
	run.Env.Sink = col
	results := run.Task(g.ctx, "doctor")

	failed, items := 0, 0
	for _, r := range results {
		fmt.Fprintln(g.stdout, r.Host)
		lines := col.get(r.Host)
		if len(lines) == 0 && r.Err != nil {
			// The checklist never ran: the connection is the report.
			lines = connectionItems(r.Err)
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "✗") {
				items++
			}
			fmt.Fprintln(g.stdout, "  "+l)
		}
		if r.Err != nil {
			failed++
			if !hasFailedItem(lines) {
				// An error outside the checks (e.g. a replaced step raised).
				items++
				fmt.Fprintf(g.stdout, "  ✗ %s\n", oneLine(r.Err))
			}
		}
	}
	fmt.Fprintln(g.stdout)
	if failed == 0 {
		fmt.Fprintf(g.stdout, "doctor %s: all checks passed on %d host(s)\n", c.Stage, len(results))
		return nil
	}
	fmt.Fprintf(g.stdout, "doctor %s: %d failed check(s) on %d of %d host(s)\n", c.Stage, items, failed, len(results))
	return &DoctorError{Failed: failed, Total: len(results)}
}

func hasFailedItem(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "✗") {
			return true
		}
	}
	return false
}

func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// connectionItems turns a failed SSH connection into checklist items: the
// first of reachable / host key / auth that failed, with the fix.
func connectionItems(err error) []string {
	item := func(mark, name, detail string) string { return fmt.Sprintf("%s %-18s %s", mark, name, detail) }
	fix := ""
	var h ui.Hinter
	if errors.As(err, &h) {
		fix = h.Hint()
	}
	var hk *sshpool.HostKeyError
	switch {
	case errors.As(err, &hk):
		return []string{item("✓", "reachable", "sshd answered"), item("✗", "host key known", oneLine(err)), "    fix: " + fix}
	case strings.Contains(err.Error(), "unable to authenticate"):
		if fix == "" {
			fix = "add your public key to ~/.ssh/authorized_keys of the stage's user on the host, or pass -i KEY / load it in ssh-agent"
		}
		return []string{item("✓", "reachable", "sshd answered"), item("✓", "host key known", "matches known_hosts"),
			item("✗", "auth", oneLine(err)), "    fix: " + fix}
	default:
		if fix == "" {
			fix = "check the host address and port in shipit.toml (and ~/.ssh/config), that sshd runs and that no firewall blocks you"
		}
		return []string{item("✗", "reachable", oneLine(err)), "    fix: " + fix}
	}
}

// hostCollector keeps each host's report lines so they print grouped; with
// -v, commands and their output are shown live as well.
type hostCollector struct {
	mu      sync.Mutex
	lines   map[string][]string
	live    runtime.Sink
	verbose bool
}

func (c *hostCollector) Emit(e runtime.Event) {
	if c.verbose {
		c.live.Emit(e)
	}
	var add []string
	switch e.Kind {
	case runtime.Info:
		add = strings.Split(e.Text, "\n")
	case runtime.Warn:
		add = []string{"! " + e.Text}
	default:
		return
	}
	c.mu.Lock()
	c.lines[e.Host] = append(c.lines[e.Host], add...)
	c.mu.Unlock()
}

func (c *hostCollector) get(host string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines[host]
}
