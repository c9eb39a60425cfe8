package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/internal/text"
)

// parseInto fills h from the script's output; now is used for uptimes.
func parseInto(h *Host, spec Spec, out string, now time.Time) {
	secs := splitSections(out)
	warn := func(w string) {
		if w != "" {
			h.Warnings = append(h.Warnings, w)
		}
	}
	if s := secs["current"]; s != nil && s.ok && s.code == 0 {
		h.CurrentRelease = path.Base(strings.TrimSpace(s.out))
	}
	if s := secs["lock"]; s != nil && s.ok && s.code == 0 {
		l, err := lockfile.Parse([]byte(s.out))
		if err != nil && !errors.Is(err, lockfile.ErrEmpty) {
			warn("shipit.lock: " + err.Error())
		} else if err == nil {
			h.Lock = l
		}
	}
	if h.CurrentRelease == "" && h.Lock == nil {
		warn("not deployed: no current release under " + path.Join(spec.DeployTo, spec.App))
	}

	warn(secs["ids"].failed("docker ps"))
	var stats map[string]statsRow
	if s := secs["stats"]; s != nil {
		if w := s.failed("docker stats"); w != "" {
			warn(w)
		} else {
			stats = parseStats(s.out)
		}
	}
	if s := secs["inspect"]; s != nil {
		if w := s.failed("docker inspect"); w != "" {
			warn(w)
		} else {
			cs, err := parseInspect(s.out, spec, h.CurrentRelease, stats, now)
			if err != nil {
				warn("docker inspect: " + err.Error())
			}
			h.Containers = cs
		}
	}
	if h.Containers == nil {
		h.Containers = []Container{}
	}
	sortContainers(h.Containers)

	h.Disk.DeployTo.Path = spec.DeployTo
	if s := secs["dfdeploy"]; s != nil {
		if w := s.failed("df " + spec.DeployTo); w != "" {
			warn(w)
		} else {
			parseDF(s.out, &h.Disk.DeployTo)
		}
	}
	if s := secs["du"]; s != nil {
		if w := s.failed("du " + path.Join(spec.DeployTo, spec.App)); w != "" {
			warn(w)
		} else if f := strings.Fields(s.out); len(f) > 0 {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				h.Disk.DeployTo.UsedBytes = ptr(kb * 1024)
			}
		}
	}
	if s := secs["dockerroot"]; s != nil {
		h.Disk.Docker.Path = strings.TrimSpace(s.out)
	}
	if s := secs["dfdocker"]; s != nil {
		if w := s.failed("df " + h.Disk.Docker.Path); w != "" {
			warn(w)
		} else {
			parseDF(s.out, &h.Disk.Docker)
		}
	}
	if s := secs["sysdf"]; s != nil {
		if w := s.failed("docker system df"); w != "" {
			warn(w)
		} else {
			parseSystemDF(s.out, &h.Disk.Docker)
		}
	}
}

// inspectRow is the part of `docker inspect` output we use.
type inspectRow struct {
	ID           string `json:"Id"`
	Name         string `json:"Name"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status    string `json:"Status"`
		StartedAt string `json:"StartedAt"`
		Health    *struct {
			Status string `json:"Status"`
		} `json:"Health"`
	} `json:"State"`
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

func parseInspect(out string, spec Spec, current string, stats map[string]statsRow, now time.Time) ([]Container, error) {
	var rows []inspectRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("unexpected output: %w", err)
	}
	accs := map[string]string{} // container name -> accessory
	for _, a := range spec.Accessories {
		accs[spec.App+"-"+a] = a
	}
	cs := []Container{}
	for _, r := range rows {
		name := strings.TrimPrefix(r.Name, "/")
		labels := r.Config.Labels
		c := Container{ID: text.Short(r.ID), Name: name, State: r.State.Status, RestartCount: r.RestartCount}
		if acc, ok := accs[name]; ok {
			c.Kind, c.Service = "accessory", acc
		} else if acc := labels["shipit.accessory"]; acc != "" {
			c.Kind, c.Service = "accessory", acc
		} else if labels["shipit.app"] == spec.App {
			c.Kind = "app"
			c.Service = labels["com.docker.compose.service"]
			c.Release = labels["shipit.release"]
			c.Current = c.Release != "" && c.Release == current
		} else {
			continue // a name-filter false positive
		}
		if r.State.Health != nil {
			c.Health = r.State.Health.Status
		}
		if t, err := time.Parse(time.RFC3339Nano, r.State.StartedAt); err == nil && t.Year() > 1 {
			c.StartedAt = t.UTC()
			if c.State == "running" && now.After(t) {
				c.UptimeSeconds = int64(now.Sub(t) / time.Second)
			}
		}
		if st, ok := stats[c.ID]; ok && c.State == "running" {
			c.CPUPercent, c.MemPercent = st.cpu, st.memPct
			c.MemBytes, c.MemLimitBytes = st.mem, st.memLimit
		}
		cs = append(cs, c)
	}
	return cs, nil
}

type statsRow struct {
	cpu, memPct   *float64
	mem, memLimit *int64
}

// parseStats reads `docker stats --no-stream --format '{{json .}}'` lines,
// keyed by the 12-digit ID.
func parseStats(out string) map[string]statsRow {
	m := map[string]statsRow{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct{ ID, CPUPerc, MemUsage, MemPerc string }
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == "" {
			continue
		}
		var row statsRow
		row.cpu = parsePercent(r.CPUPerc)
		row.memPct = parsePercent(r.MemPerc)
		if used, limit, ok := strings.Cut(r.MemUsage, "/"); ok {
			row.mem = parseSize(used)
			row.memLimit = parseSize(limit)
		}
		m[text.Short(r.ID)] = row
	}
	return m
}

func parsePercent(s string) *float64 {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil
	}
	return &f
}

// parseSize reads Docker's human sizes: binary ("756KiB", "1.5GiB") from
// docker stats and decimal ("1.986MB", "5.361kB") from docker system df.
func parseSize(s string) *int64 {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return nil
	}
	mult := map[string]float64{
		"": 1, "B": 1,
		"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
	}[strings.TrimSpace(s[i:])]
	if mult == 0 {
		return nil
	}
	return ptr(int64(f * mult))
}

// parseDF reads `df -Pk PATH`: a header and one line (the mount point may
// contain spaces, so only the leading numeric fields are used).
func parseDF(out string, d *DiskUse) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return
	}
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 5 {
		return
	}
	num := func(s string) *int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil
		}
		return ptr(n * 1024)
	}
	d.FSSizeBytes, d.FSUsedBytes, d.FSAvailBytes = num(f[1]), num(f[2]), num(f[3])
	if p, err := strconv.Atoi(strings.TrimSuffix(f[4], "%")); err == nil {
		d.FSUsePercent = &p
	}
}

// parseSystemDF reads `docker system df --format '{{json .}}'`.
func parseSystemDF(out string, d *DiskUse) {
	var total int64
	seen := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct{ Type, Size string }
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		n := parseSize(r.Size)
		if n == nil {
			continue
		}
		switch r.Type {
		case "Images":
			d.ImagesBytes = n
		case "Containers":
			d.ContainersBytes = n
		case "Local Volumes":
			d.VolumesBytes = n
		case "Build Cache":
			d.BuildCacheBytes = n
		default:
			continue
		}
		total += *n
		seen = true
	}
	if seen {
		d.UsedBytes = &total
	}
}

func ptr[T any](v T) *T { return &v }
