package monitor

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Width is the number of columns of terminal f, or 0 when f is not one.
func Width(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	return 0
}

// RunTUI shows the live dashboard on out (a terminal) until q, Ctrl-C or
// ctx is done, then restores the terminal. Keys are read from in.
func RunTUI(ctx context.Context, w *Watcher, each Fanout, in, out *os.File) error {
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return fmt.Errorf("monitor: cannot switch the terminal to raw mode: %w", err)
	}
	// Alternate screen and hidden cursor; both undone on every way out.
	fmt.Fprint(out, "\x1b[?1049h\x1b[?25l")
	defer func() {
		fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")
		term.Restore(int(in.Fd()), old)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.Start(ctx, each)

	quit := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			// Raw mode turns Ctrl-C into byte 3 instead of SIGINT.
			for _, b := range buf[:n] {
				if b == 'q' || b == 'Q' || b == 3 {
					close(quit)
					return
				}
			}
		}
	}()
	winch := make(chan os.Signal, 1)
	notifyResize(winch)
	defer signal.Stop(winch)

	tick := time.NewTicker(time.Second) // keeps ages and "collecting" current
	defer tick.Stop()
	for {
		cols, rows, err := term.GetSize(int(out.Fd()))
		if err != nil || cols <= 0 || rows <= 0 {
			cols, rows = 80, 24
		}
		draw(out, Frame(w, cols, rows, time.Now()))
		select {
		case <-ctx.Done():
			return nil
		case <-quit:
			return nil
		case <-w.Changed():
		case <-tick.C:
		case <-winch:
		}
	}
}

// draw repaints the screen in place: home, each line then clear-to-end,
// clear below. Raw mode needs explicit carriage returns.
func draw(out *os.File, lines []string) {
	var b strings.Builder
	b.WriteString("\x1b[H")
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(l)
		b.WriteString("\x1b[K")
	}
	b.WriteString("\x1b[J")
	out.WriteString(b.String())
}

// Frame is the dashboard's screen content for a cols x rows terminal.
func Frame(w *Watcher, cols, rows int, now time.Time) []string {
	states := w.State(now)
	down := 0
	for _, s := range states {
		if s.Collected && !s.Reachable {
			down++
		}
	}
	head := fmt.Sprintf("shipit monitor  %s  stage %s  %s  every %s", w.Spec.App, w.Spec.Stage, now.Format("15:04:05"), w.Interval)
	status := fmt.Sprintf("%d host(s)", len(states))
	if down > 0 {
		status += fmt.Sprintf(", %d unreachable", down)
	}
	status += "  ·  q quits"
	lines := []string{fit(head, cols), fit(status, cols), ""}
	for i, s := range states {
		if i > 0 {
			lines = append(lines, "")
		}
		switch {
		case !s.Collected:
			lines = append(lines, fit(s.Host.Host+"  connecting...", cols))
			continue
		case !s.Reachable:
			lines = append(lines, fit(s.Host.Host+"  unreachable: "+s.Error, cols))
			if s.BusyFor > 0 {
				lines = append(lines, fit("  retrying...", cols))
			}
			continue
		}
		block := RenderHost(s.Host, cols, now)
		// docker stats alone takes a second or two: only call a host slow
		// when it is well past that.
		if age := now.Sub(s.CollectedAt); s.BusyFor > max(3*w.Interval, 5*time.Second) {
			block = append(block, fit(fmt.Sprintf("  (figures from %s ago; host is slow to answer)", Duration(age)), cols))
		}
		lines = append(lines, block...)
	}
	if len(lines) > rows {
		more := len(lines) - rows + 1
		lines = append(lines[:rows-1], fit(fmt.Sprintf("... %d more line(s): enlarge the window", more), cols))
	}
	return lines
}
