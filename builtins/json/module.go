// Package json is require("shipit.json"): encode and decode JSON.
package json

import (
	stdjson "encoding/json"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.json", Open: open,
		Doc: "JSON encoding and decoding.",
		Funcs: []runtime.Func{
			{Name: "encode", Args: "value: any", Returns: "string", Doc: "Indented JSON, object keys sorted; a table with keys 1..n is an array."},
			{Name: "decode", Args: "text: string", Returns: "any", Doc: "The value of a JSON text; raises on invalid JSON."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			b, err := stdjson.MarshalIndent(runtime.FromLua(L.CheckAny(1)), "", "  ")
			if err != nil {
				L.RaiseError("json.encode: %v", err)
			}
			L.Push(lua.LString(string(b) + "\n"))
			return 1
		},
		"decode": func(L *lua.LState) int {
			var v any
			if err := stdjson.Unmarshal([]byte(L.CheckString(1)), &v); err != nil {
				L.RaiseError("json.decode: %v", err)
			}
			L.Push(runtime.ToLua(L, v))
			return 1
		},
	})
}
