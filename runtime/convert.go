package runtime

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/text"
)

// ToLua converts Go data to plain (writable) Lua values: structs become
// tables keyed by their `lua` tag or else the snake_case field name; maps
// with string keys and slices become tables; nil pointers become nil.
// Bindings use it so a Go result struct is the one description of what
// Lua gets back.
func ToLua(L *lua.LState, v any) lua.LValue {
	return toLuaValue(L, reflect.ValueOf(v))
}

func toLuaValue(L *lua.LState, v reflect.Value) lua.LValue {
	if !v.IsValid() {
		return lua.LNil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return lua.LNil
		}
		return toLuaValue(L, v.Elem())
	case reflect.String:
		return lua.LString(v.String())
	case reflect.Bool:
		return lua.LBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if d, ok := v.Interface().(time.Duration); ok {
			return lua.LNumber(d.Seconds())
		}
		return lua.LNumber(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return lua.LNumber(v.Uint())
	case reflect.Float32, reflect.Float64:
		return lua.LNumber(v.Float())
	case reflect.Slice, reflect.Array:
		t := L.CreateTable(v.Len(), 0)
		for i := 0; i < v.Len(); i++ {
			t.Append(toLuaValue(L, v.Index(i)))
		}
		return t
	case reflect.Map:
		t := L.NewTable()
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			t.RawSetString(fmt.Sprint(k.Interface()), toLuaValue(L, v.MapIndex(k)))
		}
		return t
	case reflect.Struct:
		t := L.NewTable()
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if name := luaName(f); name != "" {
				t.RawSetString(name, toLuaValue(L, v.Field(i)))
			}
		}
		return t
	}
	return lua.LNil
}

// FromLua converts a Lua value to plain Go data: tables with 1..n keys
// become []any, other tables map[string]any, numbers float64.
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

// luaName is a struct field's key in Lua: its `lua` tag, else snake_case.
func luaName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	if tag, ok := f.Tag.Lookup("lua"); ok {
		if tag == "-" {
			return ""
		}
		return strings.Split(tag, ",")[0]
	}
	var b strings.Builder
	for i, r := range f.Name {
		if unicode.IsUpper(r) {
			if i > 0 && !unicode.IsUpper(rune(f.Name[i-1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Options decodes the option table at argument n (absent or nil: all
// defaults) into dst, a pointer to a struct whose fields are named like
// ToLua names them. An unknown key or a value of the wrong type raises a
// Lua error naming the valid keys: a misspelled option must never be
// silently ignored. Durations accept seconds (number) or "1m30s".
func Options(L *lua.LState, n int, dst any) {
	t, ok := L.Get(n).(*lua.LTable)
	if !ok {
		if L.Get(n) != lua.LNil {
			L.ArgError(n, "expected an options table")
		}
		return
	}
	decodeTable(L, n, t, reflect.ValueOf(dst).Elem())
}

func decodeTable(L *lua.LState, n int, t *lua.LTable, dst reflect.Value) {
	fields := map[string]reflect.Value{}
	var names []string
	for i := 0; i < dst.NumField(); i++ {
		if name := luaName(dst.Type().Field(i)); name != "" {
			fields[name] = dst.Field(i)
			names = append(names, name)
		}
	}
	sort.Strings(names)
	t.ForEach(func(k, v lua.LValue) {
		key := k.String()
		f, ok := fields[key]
		if !ok {
			L.ArgError(n, fmt.Sprintf("unknown option %q%s (valid: %s)", key, text.DidYouMean(key, names), strings.Join(names, ", ")))
		}
		if err := assign(f, v); err != nil {
			L.ArgError(n, fmt.Sprintf("option %q: %v", key, err))
		}
	})
}

func assign(f reflect.Value, v lua.LValue) error {
	if f.Type() == reflect.TypeOf(time.Duration(0)) {
		switch x := v.(type) {
		case lua.LNumber:
			f.SetInt(int64(float64(x) * float64(time.Second)))
			return nil
		case lua.LString:
			d, err := time.ParseDuration(string(x))
			if err != nil {
				return err
			}
			f.SetInt(int64(d))
			return nil
		}
		return fmt.Errorf("want seconds or a duration like \"1m30s\", got a %s", v.Type())
	}
	switch f.Kind() {
	case reflect.String:
		switch x := v.(type) {
		case lua.LString:
			f.SetString(string(x))
			return nil
		case lua.LNumber:
			f.SetString(x.String())
			return nil
		}
	case reflect.Bool:
		if x, ok := v.(lua.LBool); ok {
			f.SetBool(bool(x))
			return nil
		}
	case reflect.Int, reflect.Int64:
		if x, ok := v.(lua.LNumber); ok {
			f.SetInt(int64(x))
			return nil
		}
	case reflect.Float64:
		if x, ok := v.(lua.LNumber); ok {
			f.SetFloat(float64(x))
			return nil
		}
	case reflect.Slice:
		if x, ok := v.(*lua.LTable); ok && f.Type().Elem().Kind() == reflect.String {
			out := reflect.MakeSlice(f.Type(), 0, x.Len())
			for i := 1; i <= x.Len(); i++ {
				out = reflect.Append(out, reflect.ValueOf(lua.LVAsString(x.RawGetInt(i))))
			}
			f.Set(out)
			return nil
		}
	case reflect.Map:
		if x, ok := v.(*lua.LTable); ok && f.Type().Elem().Kind() == reflect.String {
			m := reflect.MakeMap(f.Type())
			x.ForEach(func(k, val lua.LValue) {
				m.SetMapIndex(reflect.ValueOf(k.String()), reflect.ValueOf(lua.LVAsString(val)))
			})
			f.Set(m)
			return nil
		}
	case reflect.Interface:
		f.Set(reflect.ValueOf(FromLua(v)))
		return nil
	}
	return fmt.Errorf("want a %s, got a %s", kindName(f), v.Type())
}

func kindName(f reflect.Value) string {
	switch f.Kind() {
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of strings"
	case reflect.Map:
		return "table of strings"
	}
	return f.Kind().String()
}
