// Package time is require("shipit.time"): durations as shipit.toml writes
// them ("2s", "1m30s", or seconds), for arithmetic in recipes.
package time

import (
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.time", Open: open,
		Doc: "Durations: seconds of \"1m30s\" and back.",
		Funcs: []runtime.Func{
			{Name: "seconds", Args: "d: string|number", Returns: "number",
				Doc: "The seconds of a duration string (\"500ms\", \"1m30s\") or a number of seconds; raises on anything else."},
			{Name: "duration", Args: "seconds: number", Returns: "string", Doc: "A duration string, e.g. 90 -> \"1m30s\"."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"seconds": func(L *lua.LState) int {
			switch v := L.Get(1).(type) {
			case lua.LNumber:
				L.Push(v)
			case lua.LString:
				d, err := time.ParseDuration(string(v))
				if err != nil {
					L.ArgError(1, fmt.Sprintf("not a duration: %v", err))
				}
				L.Push(lua.LNumber(d.Seconds()))
			default:
				L.ArgError(1, "expected a duration string or a number of seconds")
			}
			return 1
		},
		"duration": func(L *lua.LState) int {
			L.Push(lua.LString((time.Duration(float64(L.CheckNumber(1)) * float64(time.Second))).String()))
			return 1
		},
	})
}
