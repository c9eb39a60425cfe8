// Package traefik is require("shipit.traefik"): routing a release in and
// draining it out of Traefik's rotation without dropping requests.
package traefik

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/traefik"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.traefik", Open: open,
		Doc: "Zero-downtime routing: wait until Traefik routes to a release, drain one before it stops.",
		Funcs: []runtime.Func{
			{Name: "wait_routed", Args: "h: shipit.Host, opts: {project: string, timeout?: number|string}",
				Doc: "Waits until Traefik sends requests to every routed container of the compose project (asked through Traefik's API, bound inside its container); raises naming what did not happen after timeout (default: the drain timeout of [deploy])."},
			{Name: "drain", Args: "h: shipit.Host, opts: {project: string, dir: string, timeout?: number|string}", Returns: "string",
				Doc: "Takes the project's routed containers out of rotation (the drain marker in dir fails their health check) and waits until Traefik no longer routes to them, at most timeout (default: [deploy] drain_timeout); returns what happened."},
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
		"drain": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := opts{Timeout: runtime.StateOf(L).Env.Health().DrainTimeout}
			runtime.Options(L, 2, &o)
			if o.Dir == "" {
				L.ArgError(2, "dir (the release's directory) is required")
			}
			msg, err := traefik.Drain(h.Context(), h.Conn, traefik.Options{Project: o.Project, Dir: o.Dir, Timeout: o.Timeout})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(msg))
			return 1
		},
	})
}
