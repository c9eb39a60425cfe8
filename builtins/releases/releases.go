// Package releases names and orders releases: require("shipit.releases").
package releases

import (
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/runtime"
)

// Layout is the release name format (UTC): sortable and readable.
const Layout = "20060102-150405"

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.releases", Open: open,
		Doc: "now() -> name for this second; next(name) -> name one second later; sort(list) -> sorted copy; prune(list, keep, protect) -> names to delete"})
}

// Name returns the release name for t.
func Name(t time.Time) string { return t.UTC().Format(Layout) }

// Next returns the name one second after name, for collisions.
func Next(name string) string {
	t, err := time.Parse(Layout, name)
	if err != nil {
		return name + "-1"
	}
	return Name(t.Add(time.Second))
}

// Prune returns the releases to delete: all but the newest keep, never one
// of protect (the current release and the rollback target).
func Prune(names []string, keep int, protect ...string) []string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	prot := map[string]bool{}
	for _, p := range protect {
		if p != "" {
			prot[p] = true
		}
	}
	var del []string
	if len(sorted) <= keep {
		return nil
	}
	for _, n := range sorted[:len(sorted)-keep] {
		if !prot[n] {
			del = append(del, n)
		}
	}
	return del
}

func strings(L *lua.LState, t *lua.LTable) []string {
	var out []string
	for i := 1; i <= t.Len(); i++ {
		out = append(out, L.ToStringMeta(t.RawGetInt(i)).String())
	}
	return out
}

func list(L *lua.LState, names []string) *lua.LTable {
	t := L.NewTable()
	for _, n := range names {
		t.Append(lua.LString(n))
	}
	return t
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"now": func(L *lua.LState) int { L.Push(lua.LString(Name(time.Now()))); return 1 },
		"next": func(L *lua.LState) int {
			L.Push(lua.LString(Next(L.CheckString(1))))
			return 1
		},
		"sort": func(L *lua.LState) int {
			s := strings(L, L.CheckTable(1))
			sort.Strings(s)
			L.Push(list(L, s))
			return 1
		},
		"prune": func(L *lua.LState) int {
			var prot []string
			if t, ok := L.Get(3).(*lua.LTable); ok {
				prot = strings(L, t)
			}
			L.Push(list(L, Prune(strings(L, L.CheckTable(1)), L.CheckInt(2), prot...)))
			return 1
		},
		"timestamp": func(L *lua.LState) int {
			L.Push(lua.LString(time.Now().UTC().Format(time.RFC3339)))
			return 1
		},
	})
}
