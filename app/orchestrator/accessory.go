package orchestrator

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
)

// PickStage returns the stage to use: the one given, or the only one.
func PickStage(cfg *config.Config, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	var stages []string
	for s := range cfg.Stages {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	if len(stages) == 1 {
		return stages[0], nil
	}
	return "", hint.New("which stage? shipit.toml defines "+strings.Join(stages, ", "),
		"pass -s STAGE: it gives the SSH settings (user, port, proxy) and, for accessories without host, the hosts")
}

// AccessoryNames resolves the name argument: one accessory, or all sorted.
func AccessoryNames(cfg *config.Config, name string) ([]string, error) {
	var all []string
	for n := range cfg.Accessories {
		all = append(all, n)
	}
	sort.Strings(all)
	if len(all) == 0 {
		return nil, hint.New("shipit.toml defines no accessories",
			"add one, e.g. [accessories.db] with image = \"postgres:16\", volumes = [\"data:/var/lib/postgresql/data\"]")
	}
	if name == "" {
		return all, nil
	}
	if _, ok := cfg.Accessories[name]; !ok {
		return nil, hint.New(fmt.Sprintf("no accessory %q in shipit.toml", name),
			"defined accessories: "+strings.Join(all, ", "))
	}
	return []string{name}, nil
}

// AccessoryHosts is where an accessory runs: the stage's hosts (narrowed
// by --hosts) when host is empty; else the stage host with that address
// (keeping its user and port; "10.0.0.5" names "10.0.0.5:2222" when only
// one matches), or that address reached with the stage's SSH settings.
func AccessoryHosts(cfg *config.Config, stage, host string, patterns []string) ([]Host, error) {
	stageHosts, err := Select(cfg, stage, nil)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return Select(cfg, stage, patterns)
	}
	var picked []Host
	for _, h := range stageHosts {
		if h.Name == host {
			picked = []Host{h}
			break
		}
		if hn, _, err := net.SplitHostPort(h.Name); err == nil && hn == host {
			picked = append(picked, h)
		}
	}
	if len(picked) != 1 {
		h, err := Address(cfg, stage, host)
		if err != nil {
			return nil, err
		}
		picked = []Host{h}
	}
	if len(patterns) > 0 && !Matches(picked[0].Name, patterns) {
		return nil, nil
	}
	return picked, nil
}
