package accessory

import (
	"encoding/json"
	"fmt"
	"sort"
)

// State is what `docker container inspect` says of an accessory's
// container, in the terms boot, details and monitor use.
type State struct {
	Managed      bool   // booted by shipit (has the accessory label)
	App          string // labels
	Accessory    string
	Hash         string
	Config       string // the recorded Summary (JSON)
	Status       string // created, running, exited...
	Running      bool
	StartedAt    string
	FinishedAt   string
	ExitCode     int
	RestartCount int
	Image        string
	Restart      string // restart policy
	Networks     []string
	Ports        []string // "hostip:hostport->ctrport/proto"
	Mounts       []string // "volume NAME:/path[:ro]" or "bind /src:/path"
}

type inspected struct {
	Config struct {
		Image  string
		Labels map[string]string
	}
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		StartedAt  string
		FinishedAt string
		ExitCode   int
	}
	HostConfig struct {
		RestartPolicy struct{ Name string }
	}
	NetworkSettings struct {
		Networks map[string]json.RawMessage
		Ports    map[string][]struct{ HostIp, HostPort string }
	}
	Mounts []struct {
		Type, Name, Source, Destination string
		RW                              bool
	}
}

// ParseInspect reads the JSON of `docker container inspect NAME`.
func ParseInspect(out []byte) (*State, error) {
	var list []inspected
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("reading docker inspect: %w", err)
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("reading docker inspect: %d containers, want 1", len(list))
	}
	c := list[0]
	l := c.Config.Labels
	s := &State{
		Managed: l[LabelAccessory] != "", App: l[LabelApp], Accessory: l[LabelAccessory],
		Hash: l[LabelHash], Config: l[LabelConfig],
		Status: c.State.Status, Running: c.State.Running, StartedAt: c.State.StartedAt,
		FinishedAt: c.State.FinishedAt, ExitCode: c.State.ExitCode, RestartCount: c.RestartCount,
		Image: c.Config.Image, Restart: c.HostConfig.RestartPolicy.Name,
	}
	for n := range c.NetworkSettings.Networks {
		s.Networks = append(s.Networks, n)
	}
	for ctr, binds := range c.NetworkSettings.Ports {
		for _, b := range binds {
			s.Ports = append(s.Ports, b.HostIp+":"+b.HostPort+"->"+ctr)
		}
	}
	for _, m := range c.Mounts {
		src := m.Source
		if m.Type == "volume" {
			src = m.Name
		}
		v := m.Type + " " + src + ":" + m.Destination
		if !m.RW {
			v += ":ro"
		}
		s.Mounts = append(s.Mounts, v)
	}
	sort.Strings(s.Networks)
	sort.Strings(s.Ports)
	sort.Strings(s.Mounts)
	return s, nil
}
