// Package recipes embeds the built-in Lua recipes and the LuaLS definitions.
package recipes

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// Default is recipes/default.lua: the 12 deploy steps, rollback and tasks.
//
//go:embed default.lua
var Default []byte

// DefaultName is the name errors in the recipe are reported under.
const DefaultName = "recipes/default.lua"

// Definitions is the LuaLS ---@meta file for shipit.lua authors.
//
//go:embed shipit.d.lua
var Definitions []byte

//go:embed *.lua
var files embed.FS

// Script is one embedded recipe file.
type Script struct {
	Name   string // "recipes/<file>.lua", as errors report it
	Source []byte
}

// All returns every built-in recipe: default.lua first, then the others
// (setup, accessories, ...) in name order. shipit.d.lua is not a recipe.
func All() []Script {
	out := []Script{{Name: DefaultName, Source: Default}}
	names, _ := fs.Glob(files, "*.lua")
	sort.Strings(names)
	for _, n := range names {
		if n == "default.lua" || strings.HasSuffix(n, ".d.lua") {
			continue
		}
		b, _ := files.ReadFile(n)
		out = append(out, Script{Name: "recipes/" + n, Source: b})
	}
	return out
}
