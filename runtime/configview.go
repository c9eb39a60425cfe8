package runtime

import (
	"reflect"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/config"
)

// configView turns the config struct into nested read-only tables keyed by
// the TOML names. Struct tables are strict (a misspelled key is an error);
// map tables (stages, env) return nil for absent keys. A config.Duration
// is its Go duration string ("2s"), a config.Batch its form in shipit.toml
// (a number, or a string such as "25%").
func configView(L *lua.LState, v any) lua.LValue {
	return toLua(L, reflect.ValueOf(v))
}

func toLua(L *lua.LState, v reflect.Value) lua.LValue {
	if v.IsValid() && v.CanInterface() {
		switch x := v.Interface().(type) {
		case config.Duration:
			return lua.LString(x.String())
		case config.Batch:
			if n, ok := x.Count(); ok {
				return lua.LNumber(n)
			}
			return lua.LString(x.String())
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return lua.LNil
		}
		return toLua(L, v.Elem())
	case reflect.String:
		return lua.LString(v.String())
	case reflect.Bool:
		return lua.LBool(v.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return lua.LNumber(v.Int())
	case reflect.Float64:
		return lua.LNumber(v.Float())
	case reflect.Slice:
		t := L.NewTable()
		for i := 0; i < v.Len(); i++ {
			t.Append(toLua(L, v.Index(i)))
		}
		return readOnly(L, t, nil)
	case reflect.Map:
		t := L.NewTable()
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			t.RawSetString(k.String(), toLua(L, v.MapIndex(k)))
		}
		return readOnly(L, t, nil)
	case reflect.Struct:
		t := L.NewTable()
		var names []string
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			name := strings.Split(f.Tag.Get("toml"), ",")[0]
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			names = append(names, name)
			t.RawSetString(name, toLua(L, v.Field(i)))
		}
		return readOnly(L, t, names)
	}
	return lua.LNil
}

// readOnly returns a proxy for t that rejects writes; with strict keys,
// reading a key outside them is an error.
func readOnly(L *lua.LState, t *lua.LTable, strict []string) *lua.LTable {
	proxy := L.NewTable()
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		k := L.Get(2)
		v := t.RawGet(k)
		if v == lua.LNil && strict != nil {
			L.RaiseError("config has no key %q here (keys: %s)", k.String(), strings.Join(strict, ", "))
		}
		L.Push(v)
		return 1
	}))
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("config is read-only; change shipit.toml instead")
		return 0
	}))
	// pairs/ipairs in Lua 5.1 ignore __pairs; expose the raw table for iteration.
	L.SetField(mt, "__call", L.NewFunction(func(L *lua.LState) int {
		L.Push(t)
		return 1
	}))
	L.SetField(mt, "__len", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(t.Len()))
		return 1
	}))
	L.SetMetatable(proxy, mt)
	return proxy
}
