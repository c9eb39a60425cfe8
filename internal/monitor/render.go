package monitor

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Render returns the snapshot as text, a table per host. width > 0 fits
// the lines into that many columns (the container name column shrinks
// first, then lines are cut); 0 means no limit.
func Render(s Snapshot, width int, now time.Time) []string {
	var lines []string
	for i, h := range s.Hosts {
		if i > 0 {
			lines = append(lines, "")
		}
		lines = append(lines, RenderHost(h, width, now)...)
	}
	return lines
}

// RenderHost renders one host's block.
func RenderHost(h Host, width int, now time.Time) []string {
	var lines []string
	add := func(s string) { lines = append(lines, fit(s, width)) }
	if !h.Reachable {
		add(h.Host + "  unreachable: " + h.Error)
		return lines
	}
	head := h.Host + "  release " + orDash(h.CurrentRelease)
	add(head)
	if h.Lock != nil {
		var bits []string
		if t, err := time.Parse(time.RFC3339, h.Lock.DeployedAt); err == nil {
			bits = append(bits, "deployed "+Duration(now.Sub(t))+" ago")
		}
		if h.Lock.GitSHA != "" {
			bits = append(bits, "git "+short7(h.Lock.GitSHA))
		}
		if h.Lock.PreviousRelease != "" {
			bits = append(bits, "previous "+h.Lock.PreviousRelease)
		}
		if len(bits) > 0 {
			add("  " + strings.Join(bits, " · "))
		}
	}
	if len(h.Containers) == 0 {
		add("  no containers")
	} else {
		lines = append(lines, containerTable(h.Containers, width)...)
	}
	d := h.Disk
	dep := "  disk deploy:"
	if d.DeployTo.UsedBytes != nil {
		dep += " app " + Bytes(*d.DeployTo.UsedBytes) + ","
	}
	add(dep + fsText(d.DeployTo) + " (" + orDash(d.DeployTo.Path) + ")")
	if d.Docker.Path != "" || d.Docker.UsedBytes != nil {
		dock := "       docker:"
		if d.Docker.UsedBytes != nil {
			dock += " " + Bytes(*d.Docker.UsedBytes)
			if d.Docker.ImagesBytes != nil && d.Docker.VolumesBytes != nil {
				dock += fmt.Sprintf(" (images %s, volumes %s)", Bytes(*d.Docker.ImagesBytes), Bytes(*d.Docker.VolumesBytes))
			}
			dock += ","
		}
		add(dock + fsText(d.Docker) + " (" + orDash(d.Docker.Path) + ")")
	}
	for _, w := range h.Warnings {
		add("  ! " + w)
	}
	return lines
}

func fsText(d DiskUse) string {
	if d.FSUsePercent == nil || d.FSAvailBytes == nil || d.FSSizeBytes == nil {
		return " fs -"
	}
	return fmt.Sprintf(" fs %d%% used, %s free of %s", *d.FSUsePercent, Bytes(*d.FSAvailBytes), Bytes(*d.FSSizeBytes))
}

var tableHead = []string{"NAME", "SERVICE", "RELEASE", "STATE", "HEALTH", "UP", "CPU", "MEM"}

// containerTable lays out the containers; '*' marks the current release.
// When the full names do not fit in width, compose names lose their
// "<app>-<release>-" prefix (the release has its own column).
func containerTable(cs []Container, width int) []string {
	build := func(short bool) [][]string {
		rows := [][]string{append([]string{}, tableHead...)}
		rows[0][0] = " NAME"
		for _, c := range cs {
			name := c.Name
			if short {
				name = shortName(c)
			}
			mark := " "
			if c.Kind == "app" && c.Current {
				mark = "*"
			}
			up := "-"
			if c.State == "running" {
				up = Duration(time.Duration(c.UptimeSeconds) * time.Second)
			}
			rel := c.Release
			if c.Kind == "accessory" {
				rel = "(accessory)"
			}
			cpu, mem := "-", "-"
			if c.CPUPercent != nil {
				cpu = fmt.Sprintf("%.1f%%", *c.CPUPercent)
			}
			if c.MemBytes != nil {
				mem = Bytes(*c.MemBytes)
			}
			state := c.State
			if c.RestartCount > 0 {
				state += fmt.Sprintf("(%d)", c.RestartCount)
			}
			rows = append(rows, []string{mark + name, orDash(c.Service), orDash(rel), orDash(state), orDash(c.Health), up, cpu, mem})
		}
		return rows
	}
	widths := func(rows [][]string) ([]int, int) {
		w := make([]int, len(tableHead))
		for _, r := range rows {
			for i, cell := range r {
				w[i] = max(w[i], utf8.RuneCountInString(cell))
			}
		}
		total := 1 + 2*(len(w)-1)
		for _, x := range w {
			total += x
		}
		return w, total
	}
	rows := build(false)
	w, total := widths(rows)
	if width > 0 && total > width {
		rows = build(true)
		w, total = widths(rows)
		if over := total - width; over > 0 {
			w[0] = max(8, w[0]-over)
		}
	}
	var out []string
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(" ")
		for i, cell := range r {
			if i == 0 {
				cell = cut(cell, w[0])
			}
			if i == len(r)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(pad(cell, w[i]))
			b.WriteString("  ")
		}
		out = append(out, fit(b.String(), width))
	}
	return out
}

func shortName(c Container) string {
	if c.Kind == "accessory" {
		return c.Service
	}
	if c.Release != "" {
		if i := strings.Index(c.Name, c.Release+"-"); i >= 0 {
			return c.Name[i+len(c.Release)+1:]
		}
	}
	return c.Name
}

func pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// cut shortens s to n runes with an ellipsis in the middle, keeping the
// distinctive tail of compose names (service and index).
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 5 {
		return s
	}
	head := (n - 1) / 2
	return string(r[:head]) + "~" + string(r[len(r)-(n-1-head):])
}

func fit(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + ">"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short7(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

// Duration is a compact age: 45s, 12m, 3h05m, 2d03h.
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// Bytes is a binary size: 512B, 1.2KiB, 3.4MiB, 5.6GiB.
func Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			if f >= 100 {
				return fmt.Sprintf("%.0f%s", f, u)
			}
			return fmt.Sprintf("%.1f%s", f, u)
		}
	}
	return ""
}
