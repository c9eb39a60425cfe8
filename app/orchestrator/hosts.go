// Package orchestrator is the one place where shipit selects hosts and
// runs work on them: the hosts of a stage narrowed by --hosts patterns,
// one goroutine and one pooled connection per host, a parallelism bound,
// cancellation, and typed per-host results that the UI renders. Every
// command that touches hosts goes through it.
package orchestrator

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/sshpool"
)

// Host is one selected host.
type Host struct {
	Name    string         // the address as written in shipit.toml
	Target  sshpool.Target // how to reach it
	Primary bool           // the stage's primary host (once-per-stage hooks run there)
}

// Select returns the hosts of stage, in shipit.toml order, narrowed to
// those whose address matches one of patterns (shell globs, e.g. "10.0.0.*";
// a pattern may also list several separated by commas). No pattern selects
// every host; a pattern that matches none is an error naming the hosts.
func Select(cfg *config.Config, stage string, patterns []string) ([]Host, error) {
	st, err := cfg.Stage(stage)
	if err != nil {
		return nil, err
	}
	all := make([]Host, len(st.Hosts))
	primary := 0
	for i, h := range st.Hosts {
		all[i] = Host{Name: h.Address, Target: target(st, h)}
		if h.Primary {
			primary = i
		}
	}
	all[primary].Primary = true
	pats := splitPatterns(patterns)
	if len(pats) == 0 {
		return all, nil
	}
	var out []Host
	for _, p := range pats {
		if _, err := path.Match(p, ""); err != nil {
			return nil, hint.New(fmt.Sprintf("--hosts %q is not a valid pattern: %v", p, err),
				"use shell globs: * any characters, ? one character, [abc] a set")
		}
	}
	for _, h := range all {
		if Matches(h.Name, pats) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		names := make([]string, len(all))
		for i, h := range all {
			names[i] = h.Name
		}
		return nil, hint.New(fmt.Sprintf("--hosts %s matches no host of stage %s", strings.Join(pats, ","), stage),
			"the stage's hosts are: "+strings.Join(names, ", "))
	}
	return out, nil
}

// Matches reports whether name matches one of patterns (see Select).
func Matches(name string, patterns []string) bool {
	for _, p := range splitPatterns(patterns) {
		if ok, _ := path.Match(p, name); ok || p == name {
			return true
		}
	}
	return false
}

// Address returns a host outside the stage's list (an accessory's host),
// reached with the stage's user, port and proxy.
func Address(cfg *config.Config, stage, address string) (Host, error) {
	st, err := cfg.Stage(stage)
	if err != nil {
		return Host{}, err
	}
	return Host{Name: address, Target: target(st, config.Host{Address: address})}, nil
}

func splitPatterns(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		for _, part := range strings.Split(p, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// target resolves a stage's host to an SSH target: the host's user and
// port win over the stage's, and "host:port" in address over both ports.
func target(st *config.Stage, h config.Host) sshpool.Target {
	t := sshpool.Target{Name: h.Address, Host: h.Address, User: st.User, Port: st.Port, Proxy: st.Proxy}
	if h.User != "" {
		t.User = h.User
	}
	if h.Port != 0 {
		t.Port = h.Port
	}
	if host, port, err := net.SplitHostPort(h.Address); err == nil {
		if p, err := strconv.Atoi(port); err == nil {
			t.Host, t.Port = host, p
		}
	}
	return t
}
