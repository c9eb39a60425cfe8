// Package health is require("shipit.health"): the app's health settings,
// as every builtin that probes, waits or drains uses them.
package health

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.health", Open: open,
		Doc: "The app's health settings, built once from shipit.toml ([deploy.health_check], drain_timeout, stop_timeout).",
		Funcs: []runtime.Func{
			{Name: "settings", Returns: "shipit.HealthSettings",
				Doc: "The settings with defaults applied, durations in seconds: port, path, shell, exec, url (\"\" with a cmd), check (as messages show it), interval, timeout, probe_timeout, retries, unhealthy_after, start_period, drain_timeout (automatic when 0 in shipit.toml), stop_timeout."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"settings": func(L *lua.LState) int {
			s := runtime.StateOf(L).Env.Health()
			t := L.NewTable()
			t.RawSetString("port", lua.LNumber(s.Port))
			t.RawSetString("path", lua.LString(s.Path))
			t.RawSetString("shell", lua.LString(s.Shell))
			t.RawSetString("exec", runtime.ToLua(L, append([]string{}, s.Exec...)))
			t.RawSetString("url", lua.LString(s.URL()))
			t.RawSetString("check", lua.LString(s.Describe()))
			t.RawSetString("interval", lua.LNumber(s.Interval.Seconds()))
			t.RawSetString("timeout", lua.LNumber(s.Timeout.Seconds()))
			t.RawSetString("probe_timeout", lua.LNumber(s.ProbeTimeout.Seconds()))
			t.RawSetString("retries", lua.LNumber(s.Retries))
			t.RawSetString("unhealthy_after", lua.LNumber(s.UnhealthyAfter))
			t.RawSetString("start_period", lua.LNumber(s.StartPeriod().Seconds()))
			t.RawSetString("drain_timeout", lua.LNumber(s.DrainTimeout.Seconds()))
			t.RawSetString("stop_timeout", lua.LNumber(s.StopTimeout.Seconds()))
			L.Push(t)
			return 1
		},
	})
}
