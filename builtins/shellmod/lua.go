// Package shellmod exposes the quoting helper to Lua as require("shipit.shell").
package shellmod

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.shell", Open: open,
		Doc: "quote(s) -> a single shell word; join({...}) -> quoted words joined by spaces"})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"quote": func(L *lua.LState) int {
			L.Push(lua.LString(shell.Quote(L.CheckString(1))))
			return 1
		},
		"join": func(L *lua.LState) int {
			t := L.CheckTable(1)
			words := make([]string, 0, t.Len())
			for i := 1; i <= t.Len(); i++ {
				words = append(words, L.ToStringMeta(t.RawGetInt(i)).String())
			}
			L.Push(lua.LString(shell.Join(words...)))
			return 1
		},
	})
}
