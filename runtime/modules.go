package runtime

import (
	"sort"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Module is a Lua module a recipe can require. Modules are registered once
// at init time and opened lazily in each state that requires them.
type Module struct {
	Name string                          // require name, e.g. "shipit.compose"
	Open func(L *lua.LState) *lua.LTable // builds the module table; HostOf(L) gives the host
	Doc  string
}

var (
	modMu   sync.RWMutex
	modules = map[string]Module{}
)

// RegisterModule makes m available to require in every new state.
func RegisterModule(m Module) {
	modMu.Lock()
	defer modMu.Unlock()
	if _, dup := modules[m.Name]; dup {
		panic("runtime: module registered twice: " + m.Name)
	}
	modules[m.Name] = m
}

// Modules lists the registered module names, sorted.
func Modules() []string {
	modMu.RLock()
	defer modMu.RUnlock()
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func preloadModules(L *lua.LState) {
	modMu.RLock()
	defer modMu.RUnlock()
	for _, m := range modules {
		m := m
		L.PreloadModule(m.Name, func(L *lua.LState) int {
			L.Push(m.Open(L))
			return 1
		})
	}
}
