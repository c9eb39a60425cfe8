// Package compose detects the remote Compose flavour and exposes compose
// and health operations to recipes as require("shipit.compose").
package compose

import (
	"fmt"
	"time"

	"context"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/health"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.compose", Open: open,
		Doc: "command(h) -> 'docker compose' | 'docker-compose' (detected once per host); flavor(h) -> 'v2' | 'v1'; wait_healthy(h, {project, service, interval, timeout})"})
}

// Flavor is the Compose implementation on a host.
type Flavor struct {
	Command string // shell prefix
	V1      bool
	Version string
}

// NoComposeError means the host has neither compose v2 nor v1.
type NoComposeError struct{ Host string }

func (e *NoComposeError) Error() string {
	return fmt.Sprintf("host %s: neither `docker compose` (v2 plugin) nor `docker-compose` (v1) works", e.Host)
}

func (e *NoComposeError) Hint() string {
	return "install Docker and Compose on the host (Debian: apt-get install docker.io docker-compose), or run `shipit setup --install-docker`"
}

// Detect finds the compose flavour once per host.
func Detect(h *runtime.Host) (Flavor, error) {
	v, err := h.Memo("compose.flavor", func() (any, error) {
		if r, err := h.Exec("docker compose version --short", true, runtime.RunOpts{Quiet: true}); err == nil && r.Code == 0 {
			return Flavor{Command: "docker compose", Version: trim(r.Stdout)}, nil
		}
		if r, err := h.Exec("docker-compose version --short", true, runtime.RunOpts{Quiet: true}); err == nil && r.Code == 0 {
			return Flavor{Command: "docker-compose", V1: true, Version: trim(r.Stdout)}, nil
		}
		return nil, &NoComposeError{Host: h.Name}
	})
	if err != nil {
		return Flavor{}, err
	}
	return v.(Flavor), nil
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"command": func(L *lua.LState) int {
			f, err := Detect(runtime.CheckHost(L, 1))
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(f.Command))
			return 1
		},
		"flavor": func(L *lua.LState) int {
			f, err := Detect(runtime.CheckHost(L, 1))
			if err != nil {
				return runtime.Raise(L, err)
			}
			if f.V1 {
				L.Push(lua.LString("v1"))
			} else {
				L.Push(lua.LString("v2"))
			}
			return 1
		},
		"wait_healthy": waitHealthy,
	})
}

func waitHealthy(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := L.CheckTable(2)
	interval := duration(L, o, "interval", 2*time.Second)
	probe := duration(L, o, "timeout", 3*time.Second)
	retries := int(lua.LVAsNumber(o.RawGetString("retries")))
	if retries <= 0 {
		retries = 15
	}
	// Docker marks a container unhealthy after `retries` failed probes; wait
	// that long plus a grace period for the container to boot.
	opts := health.Options{
		Project:  lua.LVAsString(o.RawGetString("project")),
		Service:  lua.LVAsString(o.RawGetString("service")),
		Interval: min(interval, time.Second),
		Timeout:  time.Duration(retries+1)*(interval+probe) + 30*time.Second,
	}
	if opts.Project == "" || opts.Service == "" {
		L.ArgError(2, "project and service are required")
	}
	run := func(ctx context.Context, cmd string) (string, error) {
		r, err := h.Exec(cmd, false, runtime.RunOpts{Quiet: true})
		return r.Stdout, err
	}
	if err := health.Wait(h.Context(), run, opts); err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}

func duration(L *lua.LState, t *lua.LTable, key string, def time.Duration) time.Duration {
	switch v := t.RawGetString(key).(type) {
	case lua.LNumber:
		return time.Duration(float64(v) * float64(time.Second))
	case lua.LString:
		d, err := time.ParseDuration(string(v))
		if err != nil {
			L.RaiseError("%s: %v", key, err)
		}
		return d
	}
	return def
}
