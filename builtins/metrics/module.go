// Package metrics is require("shipit.metrics"): what the host's Traefik
// measured of a routed service, for custom verify or canary tasks.
package metrics

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/metrics"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.metrics", Open: open,
		Doc: "Traefik's numbers of a routed service on this host (the metrics `shipit setup` turns on), as [deploy.verify] reads them.",
		Funcs: []runtime.Func{
			{Name: "window", Args: "h: shipit.Host, opts?: {seconds?: number, service?: string}", Returns: "shipit.MetricsWindow",
				Doc: "Reads the counters, waits seconds (default 10), reads them again: requests, errors (5xx), error_rate, p95 (seconds, -1 without requests) over that window, and p95_before (the service's whole history before it). service defaults to the app's (<app>-<stage>). Raises when the host's Traefik serves no metrics."},
			{Name: "total", Args: "h: shipit.Host, opts?: {service?: string}", Returns: "shipit.MetricsWindow",
				Doc: "The service's counters since Traefik started (the same fields; p95_before = p95)."},
		}})
}

type opts struct {
	Seconds float64
	Service string
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"window": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := optsOf(L, h)
			if o.Seconds == 0 {
				o.Seconds = 10
			}
			a, err := metrics.Scrape(h.Context(), h.Conn)
			if err != nil {
				return runtime.Raise(L, err)
			}
			select {
			case <-h.Context().Done():
				return runtime.Raise(L, h.Context().Err())
			case <-time.After(time.Duration(o.Seconds * float64(time.Second))):
			}
			b, err := metrics.Scrape(h.Context(), h.Conn)
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(table(L, metrics.Between(a, b, o.Service), metrics.Total(a, o.Service)))
			return 1
		},
		"total": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := optsOf(L, h)
			s, err := metrics.Scrape(h.Context(), h.Conn)
			if err != nil {
				return runtime.Raise(L, err)
			}
			w := metrics.Total(s, o.Service)
			L.Push(table(L, w, w))
			return 1
		},
	})
}

func optsOf(L *lua.LState, h *runtime.Host) opts {
	var o opts
	if L.GetTop() >= 2 {
		runtime.Options(L, 2, &o)
	}
	if o.Service == "" {
		_, o.Service = override.RouteNames(override.Params{App: h.App, Stage: h.Stage})
	}
	return o
}

func table(L *lua.LState, w, before metrics.Window) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("requests", lua.LNumber(w.Requests))
	t.RawSetString("errors", lua.LNumber(w.Errors))
	t.RawSetString("error_rate", lua.LNumber(w.ErrorRate()))
	t.RawSetString("p95", lua.LNumber(seconds(w.P95)))
	t.RawSetString("p95_before", lua.LNumber(seconds(before.P95)))
	t.RawSetString("seconds", lua.LNumber(w.Span.Seconds()))
	return t
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}
