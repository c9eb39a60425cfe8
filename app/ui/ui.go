// Package ui renders host events as prefixed lines, a summary table, and
// errors in the `shipit: error:` / `shipit: hint:` form.
package ui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

// Printer is the one renderer all host goroutines report to.
type Printer struct {
	// Redact, when set, rewrites every line before it is printed.
	Redact func(string) string
	// QuietReports keeps report items off the live output (commands that
	// print them grouped at the end, like doctor).
	QuietReports bool
	// QuietSteps hides step start/done lines.
	QuietSteps bool

	mu      sync.Mutex
	out     io.Writer
	verbose bool
	color   bool
	tty     bool
	width   int // host column width

	lastProgress map[string]time.Time // host -> last progress line (TTY)
	notes        map[string][]string  // host -> lines for its summary block
}

// New returns a Printer writing to out; hosts sets the prefix width.
func New(out io.Writer, verbose bool, hosts []string) *Printer {
	w := 0
	for _, h := range hosts {
		w = max(w, len(h))
	}
	tty := isTTY(out)
	return &Printer{out: out, verbose: verbose, color: tty && os.Getenv("NO_COLOR") == "", tty: tty, width: w,
		lastProgress: map[string]time.Time{}, notes: map[string][]string{}}
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *Printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Emit implements runtime.Sink.
func (p *Printer) Emit(e runtime.Event) {
	var line string
	pos := ""
	if e.Total > 0 {
		pos = fmt.Sprintf("[%d/%d] ", e.Index, e.Total)
	}
	switch e.Kind {
	case runtime.StepStart:
		if (e.Total == 0 || p.QuietSteps) && !p.verbose {
			return // pipelines and invoked tasks: the steps say enough
		}
		line = p.paint("36", "▸ ") + pos + e.Step
	case runtime.StepDone:
		if (e.Total == 0 || p.QuietSteps) && !p.verbose {
			return
		}
		line = p.paint("32", "✓ ") + pos + e.Step + p.paint("2", " "+round(e.Elapsed))
	case runtime.StepFailed:
		line = p.paint("31", "✗ ") + pos + e.Step + p.paint("2", " "+round(e.Elapsed))
	case runtime.Command:
		if !p.verbose {
			return
		}
		line = p.paint("2", "$ "+e.Text)
	case runtime.Output:
		if !p.verbose {
			return
		}
		line = p.paint("2", "  "+e.Text)
	case runtime.Debug:
		if !p.verbose {
			return
		}
		line = p.paint("2", e.Text)
	case runtime.Warn:
		line = p.paint("33", "! "+e.Text)
	case runtime.Report:
		if p.QuietReports || e.Item == nil {
			return
		}
		line = strings.Join(p.ReportLines(*e.Item), "\n")
	case runtime.Progress:
		// A line a second per host on a terminal; the final figures come
		// as Info and Note events, so nothing is lost elsewhere.
		if !p.tty || e.Progress == nil {
			return
		}
		p.mu.Lock()
		now := time.Now()
		if now.Sub(p.lastProgress[e.Host]) < time.Second {
			p.mu.Unlock()
			return
		}
		p.lastProgress[e.Host] = now
		p.mu.Unlock()
		line = p.paint("2", FormatProgress(e.Progress))
	case runtime.Note:
		p.mu.Lock()
		p.notes[e.Host] = append(p.notes[e.Host], e.Text)
		p.mu.Unlock()
		return
	default:
		line = e.Text
	}
	if p.Redact != nil {
		line = p.Redact(line)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range strings.Split(line, "\n") {
		fmt.Fprintf(p.out, "%s %s\n", p.paint("1", fmt.Sprintf("%-*s |", p.width, e.Host)), l)
	}
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// Summary prints one block per host: status, release and step timings.
func (p *Printer) Summary(title string, results []orchestrator.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "\n%s\n", title)
	for _, r := range results {
		status := p.paint("32", "ok")
		if r.Err != nil {
			status = p.paint("31", "FAILED")
		}
		switch {
		case errors.Is(r.Err, orchestrator.ErrNotRun):
			status = p.paint("33", "NOT RUN")
		case orchestrator.Unreachable(r.Err):
			status = p.paint("31", "FAILED") + " (not reached: nothing changed)"
		case r.Err != nil && r.Current != "" && r.Current == r.Release:
			status = p.paint("31", "FAILED") + " (completed on the host)"
		}
		line := fmt.Sprintf("  %-*s  %s  release %s  %s", p.width, r.Host, status, orDash(r.Release), round(r.Elapsed))
		if r.Current != "" {
			line += "  runs " + r.Current
		}
		fmt.Fprintln(p.out, line)
		var parts []string
		for _, s := range r.Steps {
			mark := ""
			if s.Failed {
				mark = "✗"
			}
			parts = append(parts, fmt.Sprintf("%s%s %s", mark, strings.TrimPrefix(strings.TrimPrefix(s.Name, "deploy:"), "rollback:"), round(s.Elapsed)))
		}
		if len(parts) > 0 {
			fmt.Fprintf(p.out, "  %-*s  %s\n", p.width, "", p.paint("2", strings.Join(parts, " · ")))
		}
		for _, n := range p.notes[r.Host] {
			fmt.Fprintf(p.out, "  %-*s  %s\n", p.width, "", n)
		}
	}
}

// FormatProgress renders a transfer's state: "images: sending 3/5 layers,
// 12.1 of 40.3 MB, 25.2 MB/s, ETA 1.1s".
func FormatProgress(t *runtime.TransferProgress) string {
	s := fmt.Sprintf("%s: %s", t.What, t.Phase)
	if t.Items > 0 {
		s += fmt.Sprintf(" %d/%d layers", t.ItemsDone, t.Items)
	}
	if t.Total > 0 {
		s += fmt.Sprintf(", %s of %s", text.Bytes(t.Done), text.Bytes(t.Total))
	}
	if t.Rate > 0 {
		s += fmt.Sprintf(", %s/s", text.Bytes(int64(t.Rate)))
	}
	if t.ETA > 0 {
		s += ", ETA " + round(t.ETA)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PrintError writes `shipit: error: …` and, when known, `shipit: hint: …`.
func PrintError(w io.Writer, err error) {
	msg := err.Error()
	fmt.Fprintf(w, "shipit: error: %s\n", strings.ReplaceAll(msg, "\n", "\n  "))
	if h := hint.Of(err); h != "" {
		fmt.Fprintf(w, "shipit: hint: %s\n", h)
	}
}

// ReportLines renders one report item: a mark, the item, its detail, and
// for warnings and failures the fix on its own line.
func (p *Printer) ReportLines(it runtime.ReportItem) []string {
	mark := map[string]string{
		runtime.ReportOK:      p.paint("32", "✓"),
		runtime.ReportChanged: p.paint("36", "~"),
		runtime.ReportWarn:    p.paint("33", "!"),
		runtime.ReportFail:    p.paint("31", "✗"),
	}[it.Status]
	if mark == "" {
		mark = " "
	}
	word := ""
	if it.Status == runtime.ReportChanged {
		word = "changed: "
	}
	lines := []string{strings.TrimRight(fmt.Sprintf("%s %-18s %s%s", mark, it.Item, word, it.Detail), " ")}
	if it.Fix != "" && (it.Status == runtime.ReportWarn || it.Status == runtime.ReportFail) {
		lines = append(lines, "    fix: "+it.Fix)
	}
	if p.Redact != nil {
		for i := range lines {
			lines[i] = p.Redact(lines[i])
		}
	}
	return lines
}

// Reports prints every host's report items grouped under the host, then a
// count of changes and failures per host.
func (p *Printer) Reports(title string, results []orchestrator.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "\n%s\n", title)
	for _, r := range results {
		fmt.Fprintf(p.out, "%s\n", r.Host)
		for _, it := range r.Report {
			for _, l := range p.ReportLines(it) {
				fmt.Fprintf(p.out, "  %s\n", l)
			}
		}
		if r.Err != nil && !HasFailure(r.Report) {
			// An error outside the items (a hook raised, the host vanished).
			msg, _, _ := strings.Cut(r.Err.Error(), "\n")
			fmt.Fprintf(p.out, "  %s %s\n", p.paint("31", "✗"), msg)
			if h := hint.Of(r.Err); h != "" {
				fmt.Fprintf(p.out, "    fix: %s\n", h)
			}
		}
	}
}

// Count returns how many items of results have status.
func Count(results []orchestrator.Result, status string) int {
	n := 0
	for _, r := range results {
		for _, it := range r.Report {
			if it.Status == status {
				n++
			}
		}
	}
	return n
}

// HasFailure reports whether items include a failed one.
func HasFailure(items []runtime.ReportItem) bool {
	for _, it := range items {
		if it.Status == runtime.ReportFail {
			return true
		}
	}
	return false
}
