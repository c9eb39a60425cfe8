// Package shell exposes the one quoting helper to Lua as
// require("shipit.shell").
package shell

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.shell", Open: open,
		Doc: "Shell quoting: every value that reaches a remote shell goes through it.",
		Funcs: []runtime.Func{
			{Name: "quote", Args: "s: string", Returns: "string", Doc: "s as one shell word."},
			{Name: "join", Args: "words: string[]", Returns: "string", Doc: "The words quoted and joined by spaces."},
		}})
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
