// Package report is require("shipit.report"): the structured items a task
// reports (doctor checks, setup changes). The command that ran the task
// gets them as values and decides its output and exit code from them.
package report

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.report", Open: open,
		Doc: "Structured results of a task: what `shipit doctor`, `shipit setup` and `shipit run` show and count.",
		Funcs: []runtime.Func{
			{Name: "ok", Args: "item: string, detail?: string", Doc: "The item is as wanted."},
			{Name: "changed", Args: "item: string, detail: string", Doc: "The item was changed (detail says how)."},
			{Name: "warn", Args: "item: string, detail: string, fix?: string", Doc: "Worth a look, not a failure."},
			{Name: "fail", Args: "item: string, detail: string, fix?: string",
				Doc: "The item is wrong: the task keeps going, and the command fails at the end."},
			{Name: "items", Returns: "{status: string, item: string, detail: string, fix: string}[]",
				Doc: "What this host's run has reported so far."},
			{Name: "failed", Returns: "integer", Doc: "How many items failed so far on this host."},
		}})
}

func add(status string) lua.LGFunction {
	return func(L *lua.LState) int {
		h := runtime.HostOf(L)
		h.AddReport(runtime.ReportItem{Status: status, Item: L.CheckString(1), Detail: L.OptString(2, ""), Fix: L.OptString(3, "")})
		return 0
	}
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"ok":      add(runtime.ReportOK),
		"changed": add(runtime.ReportChanged),
		"warn":    add(runtime.ReportWarn),
		"fail":    add(runtime.ReportFail),
		"items": func(L *lua.LState) int {
			L.Push(runtime.ToLua(L, runtime.HostOf(L).Report()))
			return 1
		},
		"failed": func(L *lua.LState) int {
			n := 0
			for _, it := range runtime.HostOf(L).Report() {
				if it.Status == runtime.ReportFail {
					n++
				}
			}
			L.Push(lua.LNumber(n))
			return 1
		},
	})
}
