package health

import (
	"fmt"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/probe"
)

// Settings are the health settings of an app, built once from shipit.toml
// (config applies the defaults) and used by everything that probes, waits
// or drains: the override's Docker health check, the wait for a new
// release, the wait until Traefik routes it, the drain of an old one and
// the grace period of its stop. docs/configuration.md states what each
// means; nothing else defaults them.
type Settings struct {
	Port int    // the web service's port inside its container (also Traefik's server port)
	Path string // the HTTP probe's path

	Shell string   // cmd as a shell string: replaces the HTTP probe
	Exec  []string // cmd as a list of words: replaces the HTTP probe, no shell

	Interval     time.Duration // between two probes
	Timeout      time.Duration // overall: how long a deploy waits for the new release to be healthy
	ProbeTimeout time.Duration // one probe
	// Retries x Interval is the start period: failed probes while the
	// release boots do not count.
	Retries int
	// UnhealthyAfter consecutive failed probes make a running container
	// unhealthy: how fast a drained release leaves Traefik's rotation.
	UnhealthyAfter int

	DrainTimeout time.Duration // the longest wait for Traefik to route a release in, or to drop one
	StopTimeout  time.Duration // grace period of a drained release's stop, for in-flight requests
}

// FromConfig builds the settings of a parsed config.
func FromConfig(c *config.Config) Settings {
	hc := c.Deploy.HealthCheck
	s := Settings{
		Port: hc.Port, Path: hc.Path, Shell: hc.Cmd.Shell, Exec: hc.Cmd.Exec,
		Interval: hc.Interval.Std(), Timeout: hc.Timeout.Std(), ProbeTimeout: hc.ProbeTimeout.Std(),
		Retries: hc.Retries, UnhealthyAfter: hc.UnhealthyAfter,
		DrainTimeout: c.Deploy.DrainTimeout.Std(), StopTimeout: c.Deploy.StopTimeout.Std(),
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = s.AutoDrainTimeout()
	}
	return s
}

// AutoDrainTimeout is drain_timeout when shipit.toml leaves it at 0: the
// time Docker takes to call a drained container unhealthy, one probe, and
// 5 s for Traefik to apply it.
func (s Settings) AutoDrainTimeout() time.Duration {
	return s.Interval*time.Duration(s.UnhealthyAfter) + s.ProbeTimeout + 5*time.Second
}

// StartPeriod is Docker's start_period: Interval x Retries.
func (s Settings) StartPeriod() time.Duration { return s.Interval * time.Duration(s.Retries) }

// HTTP reports whether the check is shipit's HTTP probe (no cmd).
func (s Settings) HTTP() bool { return s.Shell == "" && len(s.Exec) == 0 }

// URL is what the HTTP probe requests inside the container ("" with a cmd).
func (s Settings) URL() string {
	if !s.HTTP() {
		return ""
	}
	return probe.URL(s.Port, s.Path)
}

// Test is the exec-form Docker health check: shipit's probe, mounted from
// the host, which fails while the drain marker exists and then probes the
// URL or runs the cmd (a shell string with the image's /bin/sh). No shell,
// curl or wget is needed in the image unless cmd asks for one.
func (s Settings) Test() []string {
	switch {
	case len(s.Exec) > 0:
		return probe.ExecTest(s.Exec)
	case s.Shell != "":
		return probe.ShellTest(s.Shell)
	}
	return probe.HTTPTest(s.Port, s.Path, s.ProbeTimeout)
}

// Describe is the check for messages: "GET http://127.0.0.1:8080/health".
func (s Settings) Describe() string {
	switch {
	case len(s.Exec) > 0:
		return "exec " + strings.Join(s.Exec, " ")
	case s.Shell != "":
		return "sh -c " + fmt.Sprintf("%q", s.Shell)
	}
	return "GET " + s.URL()
}
