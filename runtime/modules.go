package runtime

import (
	"sort"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/text"
	lua "github.com/yuin/gopher-lua"
)

// Module is a Lua module a recipe can require. Modules are registered once
// at init time and opened lazily in each state that requires them.
type Module struct {
	Name  string                          // require name, e.g. "shipit.compose"
	Open  func(L *lua.LState) *lua.LTable // builds the module table; HostOf(L) gives the host
	Doc   string                          // one line: what the module is for
	Funcs []Func                          // every member of the table Open returns
}

// Func documents one member of a module: the single source from which
// recipes/shipit.d.lua and docs/lua-api.md are generated (see
// recipes/api_test.go, `make api-docs`), and which a test checks against the table Open returns.
type Func struct {
	Name    string // member name
	Args    string // LuaLS parameter list, e.g. "h: shipit.Host, opts?: {tail?: number}"
	Returns string // LuaLS return type(s), "" for none
	Doc     string // one sentence or two
	Value   bool   // a constant, not a function (Returns is its type)
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

// Modules lists the registered modules, sorted by name.
func Modules() []Module {
	modMu.RLock()
	defer modMu.RUnlock()
	list := make([]Module, 0, len(modules))
	for _, m := range modules {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

func preloadModules(L *lua.LState) {
	modMu.RLock()
	defer modMu.RUnlock()
	for _, m := range modules {
		m := m
		L.PreloadModule(m.Name, func(L *lua.LState) int {
			L.Push(strictModule(L, m.Name, m.Open(L)))
			return 1
		})
	}
}

// strictModule makes reading a member the module does not have an error
// (`time.secondz` must not read as nil).
func strictModule(L *lua.LState, name string, t *lua.LTable) *lua.LTable {
	var members []string
	t.ForEach(func(k, _ lua.LValue) { members = append(members, k.String()) })
	sort.Strings(members)
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		k := L.CheckString(2)
		L.RaiseError("module %s has no member %q%s (members: %s)", name, k, text.DidYouMean(k, members), strings.Join(members, ", "))
		return 0
	}))
	L.SetMetatable(t, mt)
	return t
}
