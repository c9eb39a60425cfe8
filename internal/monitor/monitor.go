// Package monitor collects per-host snapshots of a deployed app (current
// release, shipit.lock, app and accessory containers with state, health,
// uptime, CPU and memory, disk use) with one remote command per host per
// refresh, and renders them as text, JSON or a live terminal dashboard.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/internal/text"
)

// Spec says what to look at on every host.
type Spec struct {
	App         string
	Stage       string
	DeployTo    string   // [deploy] deploy_to; the app lives in DeployTo/App
	Accessories []string // names from [accessories]; containers are <app>-<name>
}

// Conn runs a remote command (sshpool.Client satisfies it).
type Conn interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// Source is one host: its name as configured and how to reach it. Dial is
// called on every refresh so that a dropped connection is redialled (the
// pool hands back the live one when there is one).
type Source struct {
	Name string
	Dial func(ctx context.Context) (Conn, error)
}

// Snapshot is one collection of every host of a stage. Its JSON form is
// documented in docs/commands-monitor.md; field names are a contract.
type Snapshot struct {
	App         string    `json:"app"`
	Stage       string    `json:"stage"`
	CollectedAt time.Time `json:"collected_at"`
	Hosts       []Host    `json:"hosts"`
}

// Host is what one host reported.
type Host struct {
	Host           string         `json:"host"`
	Reachable      bool           `json:"reachable"`
	Error          string         `json:"error"`
	CollectedAt    time.Time      `json:"collected_at"`
	DurationMS     int64          `json:"duration_ms"`
	CurrentRelease string         `json:"current_release"`
	Lock           *lockfile.Lock `json:"lock"`
	Containers     []Container    `json:"containers"`
	Disk           Disk           `json:"disk"`
	Warnings       []string       `json:"warnings"`
}

// Container is one app or accessory container.
type Container struct {
	ID            string    `json:"id"` // 12 hex digits, as docker ps shows
	Name          string    `json:"name"`
	Kind          string    `json:"kind"`    // "app" or "accessory"
	Service       string    `json:"service"` // compose service, or the accessory name
	Release       string    `json:"release"` // "" for accessories
	Current       bool      `json:"current"` // belongs to the current release
	State         string    `json:"state"`   // running, exited, restarting, ...
	Health        string    `json:"health"`  // healthy, unhealthy, starting, or "" without a health check
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"` // 0 unless running
	RestartCount  int       `json:"restart_count"`
	CPUPercent    *float64  `json:"cpu_percent"` // null when docker stats had nothing
	MemBytes      *int64    `json:"mem_bytes"`
	MemLimitBytes *int64    `json:"mem_limit_bytes"`
	MemPercent    *float64  `json:"mem_percent"`
}

// Disk is disk use of the deploy directory and of Docker.
type Disk struct {
	DeployTo DiskUse `json:"deploy_to"`
	Docker   DiskUse `json:"docker"`
}

// DiskUse is one directory and the filesystem it is on. Pointers are null
// when the value was not collected (yet).
type DiskUse struct {
	Path         string `json:"path"`
	UsedBytes    *int64 `json:"used_bytes"` // du of <deploy_to>/<app>; for docker: images+containers+volumes+build cache
	FSSizeBytes  *int64 `json:"fs_size_bytes"`
	FSUsedBytes  *int64 `json:"fs_used_bytes"`
	FSAvailBytes *int64 `json:"fs_avail_bytes"`
	FSUsePercent *int   `json:"fs_use_percent"`
	// Docker only, from `docker system df`.
	ImagesBytes     *int64 `json:"images_bytes,omitempty"`
	ContainersBytes *int64 `json:"containers_bytes,omitempty"`
	VolumesBytes    *int64 `json:"volumes_bytes,omitempty"`
	BuildCacheBytes *int64 `json:"build_cache_bytes,omitempty"`
}

// Unreachable reports the hosts that could not be collected.
func (s *Snapshot) Unreachable() []string {
	var out []string
	for _, h := range s.Hosts {
		if !h.Reachable {
			out = append(out, h.Host)
		}
	}
	return out
}

// Fanout runs fn once per source index, concurrently, and returns when
// all have returned. The command provides it from the orchestrator, which
// owns every per-host fan-out of shipit.
type Fanout func(ctx context.Context, fn func(ctx context.Context, i int))

// Collect takes one snapshot of every source, each bounded by timeout,
// with the slow disk measurements included.
func Collect(ctx context.Context, each Fanout, spec Spec, srcs []Source, timeout time.Duration) Snapshot {
	snap := Snapshot{App: spec.App, Stage: spec.Stage, Hosts: make([]Host, len(srcs))}
	each(ctx, func(ctx context.Context, i int) {
		snap.Hosts[i] = CollectHost(ctx, spec, srcs[i], timeout, true)
	})
	snap.CollectedAt = time.Now().UTC()
	return snap
}

// CollectHost runs the collection script on one host. full adds the slow
// measurements (du of the app dir, docker system df). Failures to reach the
// host make Reachable false; failures of single probes become Warnings.
func CollectHost(ctx context.Context, spec Spec, src Source, timeout time.Duration, full bool) Host {
	start := time.Now()
	h := Host{Host: src.Name}
	done := func() Host {
		if h.Warnings == nil {
			h.Warnings = []string{}
		}
		h.CollectedAt = time.Now().UTC()
		h.DurationMS = time.Since(start).Milliseconds()
		return h
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := src.Dial(ctx)
	if err != nil {
		h.Error = err.Error()
		return done()
	}
	var out, errOut strings.Builder
	code, err := conn.Run(ctx, Script(spec, full), nil, &out, &errOut)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		h.Error = err.Error()
		return done()
	}
	h.Reachable = true
	if code != 0 {
		h.Warnings = append(h.Warnings, fmt.Sprintf("collection script exited %d: %s", code, text.FirstLine(errOut.String())))
	}
	parseInto(&h, spec, out.String(), time.Now())
	return done()
}

// Markers delimit the script's sections: "@@S name", the command's stdout,
// "@@E name exitcode", then its stderr.
const (
	markStart = "@@S "
	markEnd   = "@@E "
)

// Script is the one remote shell command that prints every section. Every
// configured value goes through shell.Quote.
func Script(spec Spec, full bool) string {
	return script(spec, full)
}

type section struct {
	out  string
	err  string
	code int
	ok   bool // the section ran
}

func splitSections(out string) map[string]*section {
	secs := map[string]*section{}
	var cur *section
	var name string
	inErr := false
	var body []string
	flush := func() {
		if cur == nil {
			return
		}
		text := strings.Trim(strings.Join(body, "\n"), "\n")
		if inErr {
			cur.err = text
		} else {
			cur.out = text
		}
		body = nil
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, markStart):
			flush()
			name = strings.TrimSpace(strings.TrimPrefix(line, markStart))
			cur = &section{}
			secs[name] = cur
			inErr = false
		case cur != nil && !inErr && strings.HasPrefix(line, markEnd+name+" "):
			flush()
			fmt.Sscanf(strings.TrimPrefix(line, markEnd+name+" "), "%d", &cur.code)
			cur.ok = true
			inErr = true
		default:
			body = append(body, line)
		}
	}
	flush()
	return secs
}

// failed returns a warning for a section that did not succeed, or "".
func (s *section) failed(what string) string {
	if s == nil || !s.ok {
		return what + ": no output"
	}
	if s.code != 0 {
		msg := text.FirstLine(s.err)
		if msg == "" {
			msg = fmt.Sprintf("exit %d", s.code)
		}
		return what + ": " + msg
	}
	return ""
}

func sortContainers(cs []Container) {
	kind := func(c Container) int {
		switch {
		case c.Kind == "app" && c.Current:
			return 0
		case c.Kind == "app":
			return 1
		}
		return 2
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if kind(a) != kind(b) {
			return kind(a) < kind(b)
		}
		if a.Release != b.Release {
			return a.Release > b.Release // newest first
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Name < b.Name
	})
}
