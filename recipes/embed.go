// Package recipes embeds the default deploy recipe.
package recipes

import _ "embed"

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
