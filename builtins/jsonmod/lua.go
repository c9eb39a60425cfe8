// Package jsonmod is require("shipit.json"): encode and decode JSON.
package jsonmod

import (
	"encoding/json"
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.json", Open: open,
		Doc: "encode(value) -> string (objects with sorted keys); decode(string) -> value"})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			b, err := json.MarshalIndent(FromLua(L.CheckAny(1)), "", "  ")
			if err != nil {
				L.RaiseError("json.encode: %v", err)
			}
			L.Push(lua.LString(string(b) + "\n"))
			return 1
		},
		"decode": func(L *lua.LState) int {
			var v any
			if err := json.Unmarshal([]byte(L.CheckString(1)), &v); err != nil {
				L.RaiseError("json.decode: %v", err)
			}
			L.Push(ToLua(L, v))
			return 1
		},
	})
}

// FromLua converts a Lua value to plain Go data (arrays for 1..n tables).
func FromLua(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		return string(v)
	case *lua.LTable:
		if n := v.Len(); n > 0 {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, FromLua(v.RawGetInt(i)))
			}
			return arr
		}
		m := map[string]any{}
		v.ForEach(func(k, val lua.LValue) { m[fmt.Sprint(k)] = FromLua(val) })
		return m
	}
	return nil
}

// ToLua converts decoded JSON to Lua values.
func ToLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(ToLua(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, ToLua(L, v[k]))
		}
		return t
	}
	return lua.LNil
}
