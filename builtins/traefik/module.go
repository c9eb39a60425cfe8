// Package traefik is require("shipit.traefik"): routing a release in and
// draining it out of Traefik's rotation without dropping requests.
package traefik

import (
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/lifecycle"
	"github.com/shipit-dev/shipit/internal/metrics"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/stopgrace"
	"github.com/shipit-dev/shipit/internal/traefik"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.traefik", Open: open,
		Doc: "Zero-downtime routing: wait until Traefik routes to a release, drain one before it stops.",
		Funcs: []runtime.Func{
			{Name: "wait_routed", Args: "h: shipit.Host, opts: {project: string, timeout?: number|string}",
				Doc: "Waits until Traefik sends requests to every routed container of the compose project (asked through Traefik's API, bound inside its container); raises naming what did not happen after timeout (default: the drain timeout of [deploy])."},
			{Name: "drain", Args: "h: shipit.Host, opts: {project: string, dir: string, timeout?: number|string}", Returns: "string, boolean",
				Doc: "shipit.lifecycle's drain, also here: takes the project's routed containers out of rotation (the drain marker in dir fails their health check) and waits until Traefik no longer routes to them, at most timeout (default: [deploy] drain_timeout); returns what happened, and whether Traefik no longer routes to them (false: the drain timed out or could not be made)."},
			{Name: "stop_grace", Args: "h: shipit.Host, opts: {project: string, drained: boolean, timeout?: number|string}", Returns: "integer, string",
				Doc: "The grace period, in whole seconds, of stopping the project's containers: timeout (default: [deploy] stop_timeout), unless the project was drained and none of its main processes can react to its stop signal (no handler, as busybox httpd or a shell script as PID 1): then the time its longest requests took by Traefik's metrics (at least 1). Returns why when shorter, else \"\"."},
		}})
}

type opts struct {
	Project, Dir string
	Timeout      time.Duration
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"wait_routed": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := opts{Timeout: runtime.StateOf(L).Env.Health().DrainTimeout}
			runtime.Options(L, 2, &o)
			warn := func(s string) { h.Emit(runtime.Event{Kind: runtime.Warn, Text: s}) }
			to := traefik.Options{Project: o.Project, Timeout: o.Timeout, Logf: warn}
			to.Domain, to.AllowUnrouted = runtime.StateOf(L).Env.Routing()
			if err := traefik.WaitRouted(h.Context(), h.Conn, to); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
		"drain":      lifecycle.Drain,
		"stop_grace": stopGrace,
	})
}

// stopGrace decides the stop's grace period (internal/stopgrace): one
// command reads the project's main processes; Traefik's metrics are read
// only when none of them can react to its stop signal.
func stopGrace(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := struct {
		Project string
		Drained bool
		Timeout time.Duration
	}{Timeout: runtime.StateOf(L).Env.Health().StopTimeout}
	runtime.Options(L, 2, &o)
	if o.Project == "" {
		L.ArgError(2, "project is required")
	}
	d := stopgrace.Decision{Timeout: o.Timeout}
	if o.Drained {
		ps, err := stopgrace.Processes(h.Context(), h.Conn, o.Project)
		if err != nil {
			return runtime.Raise(L, err)
		}
		if !anyReacts(ps) {
			longest, measured := longestRequest(h)
			d = stopgrace.Decide(ps, true, o.Timeout, longest, measured)
		}
	}
	L.Push(lua.LNumber(math.Ceil(d.Timeout.Seconds())))
	L.Push(lua.LString(d.Why))
	return 2
}

func anyReacts(ps []stopgrace.Process) bool {
	for _, p := range ps {
		if p.Reacts() {
			return true
		}
	}
	return len(ps) == 0
}

// longestRequest is the bound of the app's longest request by Traefik's
// latency histogram of its service; not measured without metrics.
func longestRequest(h *runtime.Host) (time.Duration, bool) {
	s, err := metrics.Scrape(h.Context(), h.Conn)
	if err != nil {
		return 0, false
	}
	_, service := override.RouteNames(override.Params{App: h.App, Stage: h.Stage})
	var bs []stopgrace.Bucket
	for _, b := range s.Services[service].Buckets {
		bs = append(bs, stopgrace.Bucket{Le: b.Le, Count: b.Count})
	}
	return stopgrace.Longest(bs)
}
