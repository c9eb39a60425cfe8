// Package releases is require("shipit.releases"): release names and
// which releases keep_releases removes.
package releases

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/releases"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.releases", Open: open,
		Doc: "Release names (UTC timestamps) and pruning.",
		Funcs: []runtime.Func{
			{Name: "now", Returns: "string", Doc: "The release name for this second, e.g. 20250219-140000."},
			{Name: "next", Args: "name: string", Returns: "string", Doc: "The name one second later (for a name already taken)."},
			{Name: "sort", Args: "names: string[]", Returns: "string[]", Doc: "A sorted copy, oldest first."},
			{Name: "prune", Args: "names: string[], keep: integer, protect?: string[]", Returns: "string[]",
				Doc: "The releases to delete: all but the newest `keep`, never one of `protect`."},
			{Name: "timestamp", Returns: "string", Doc: "Now in RFC 3339 UTC, as shipit.lock writes it."},
			{Name: "list", Args: "h: shipit.Host", Returns: "string[]",
				Doc: "The names in the host's releases directory, oldest first (none when it is missing); read over SFTP, without a command."},
		}})
}

func strs(L *lua.LState, n int) []string {
	var out []string
	if t, ok := L.Get(n).(*lua.LTable); ok {
		for i := 1; i <= t.Len(); i++ {
			out = append(out, L.ToStringMeta(t.RawGetInt(i)).String())
		}
	}
	return out
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"now":  func(L *lua.LState) int { L.Push(lua.LString(releases.Name(time.Now()))); return 1 },
		"next": func(L *lua.LState) int { L.Push(lua.LString(releases.Next(L.CheckString(1)))); return 1 },
		"sort": func(L *lua.LState) int {
			L.CheckTable(1)
			s := strs(L, 1)
			sort.Strings(s)
			L.Push(runtime.ToLua(L, s))
			return 1
		},
		"prune": func(L *lua.LState) int {
			L.CheckTable(1)
			L.Push(runtime.ToLua(L, releases.Prune(strs(L, 1), L.CheckInt(2), strs(L, 3)...)))
			return 1
		},
		"timestamp": func(L *lua.LState) int { L.Push(lua.LString(releases.Timestamp(time.Now()))); return 1 },
		"list":      list,
	})
}

func list(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	names, err := remote.ReadDir(h.Context(), h.Conn, path.Join(h.AppPath, "releases"))
	if errors.Is(err, fs.ErrNotExist) {
		names, err = nil, nil
	}
	if err != nil {
		return runtime.Raise(L, err)
	}
	sort.Strings(names) // release names sort by time
	L.Push(runtime.ToLua(L, names))
	return 1
}
