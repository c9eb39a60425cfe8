package recipes_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
	"github.com/shipit-dev/shipit/recipes"
	"github.com/shipit-dev/shipit/runtime"
)

// The Lua API has one source: the Func lists of the runtime and of every
// registered module. recipes/shipit.d.lua and the reference part of
// docs/lua-api.md are generated from it; SHIPIT_UPDATE_API=1 (make
// api-docs) rewrites them.
const (
	docsPath   = "../docs/lua-api.md"
	beginMark  = "<!-- BEGIN GENERATED REFERENCE (make api-docs) -->\n"
	endMark    = "<!-- END GENERATED REFERENCE -->\n"
	updateHint = "run `make api-docs` to regenerate it from the Go sources"
)

func TestGeneratedAPIFilesAreUpToDate(t *testing.T) {
	defs := runtime.APIDefinitions()
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), beginMark)
	_, after, ok2 := strings.Cut(rest, endMark)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the generated-reference markers", docsPath)
	}
	wantDoc := before + beginMark + runtime.APIReference() + endMark + after
	if os.Getenv("SHIPIT_UPDATE_API") == "1" {
		if err := os.WriteFile("shipit.d.lua", []byte(defs), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(docsPath, []byte(wantDoc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(recipes.Definitions) != defs {
		t.Errorf("recipes/shipit.d.lua is out of date: %s", updateHint)
	}
	if string(doc) != wantDoc {
		t.Errorf("%s is out of date: %s", docsPath, updateHint)
	}
}

func names(fs []runtime.Func) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		m[f.Name] = true
	}
	return m
}

// Every function a module's table holds is documented, and every
// documented one exists.
func TestEveryModuleMemberIsDocumented(t *testing.T) {
	s := load(t)
	for _, m := range runtime.Modules() {
		if m.Doc == "" {
			t.Errorf("module %s has no Doc", m.Name)
		}
		if err := s.L.DoString(`__mod = require("` + m.Name + `")`); err != nil {
			t.Fatalf("require %s: %v", m.Name, err)
		}
		tbl := s.L.GetGlobal("__mod").(*lua.LTable)
		documented := names(m.Funcs)
		tbl.ForEach(func(k, _ lua.LValue) {
			if !documented[k.String()] {
				t.Errorf("%s.%s is registered but not documented (add it to the module's Funcs)", m.Name, k)
			}
		})
		for _, f := range m.Funcs {
			if tbl.RawGetString(f.Name) == lua.LNil {
				t.Errorf("%s.%s is documented but not registered", m.Name, f.Name)
			}
			if f.Doc == "" {
				t.Errorf("%s.%s has no Doc", m.Name, f.Name)
			}
		}
	}
}

// Every global the runtime adds to the standard libraries is documented,
// and every documented one exists.
func TestEveryGlobalIsDocumented(t *testing.T) {
	s := load(t)
	std := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer std.Close()
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenPackage, lua.OpenTable, lua.OpenString, lua.OpenMath, lua.OpenOs} {
		std.Push(std.NewFunction(open))
		std.Call(0, 0)
	}
	documented := names(runtime.Globals)
	var extra []string
	s.L.G.Global.ForEach(func(k, _ lua.LValue) {
		name := k.String()
		if strings.HasPrefix(name, "__") || (std.G.Global.RawGetString(name) != lua.LNil && name != "print") {
			return
		}
		if !documented[name] {
			extra = append(extra, name)
		}
	})
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("globals not documented in runtime.Globals: %v", extra)
	}
	for _, g := range runtime.Globals {
		if s.L.G.Global.RawGetString(g.Name) == lua.LNil {
			t.Errorf("runtime.Globals documents %s, which no state has", g.Name)
		}
	}
}

// Every member of h answers, and the error for an unknown one lists them.
func TestEveryHostMemberIsDocumented(t *testing.T) {
	h := &runtime.Host{Conn: &localconn.Conn{HostName: "h", Dir: t.TempDir()}, Name: "h", App: "x", AppPath: t.TempDir()}
	c, err := runtime.Compile(runtime.Script{Name: recipes.DefaultName, Source: recipes.Default})
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	src.WriteString("task(\"probe\", function(h)\n")
	for _, m := range runtime.HostMembers {
		src.WriteString("  assert(h." + m.Name + " ~= nil, \"" + m.Name + "\")\n")
	}
	src.WriteString("  local ok, err = pcall(function() return h.nope end)\n  assert(not ok and err:find(\"members: \"), tostring(err))\nend)\n")
	user, err := runtime.Compile(runtime.Script{Name: "probe.lua", Source: []byte(src.String())})
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewState(envFor(t), h, c, user)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RunTask(t.Context(), "probe"); err != nil {
		t.Fatal(err)
	}
	if err := runtime.CheckHostMembersDocumented(); err != nil {
		t.Fatal(err)
	}
}
