// Package all registers every builtin Lua module.
package all

import (
	_ "github.com/shipit-dev/shipit/builtins/accessory"
	_ "github.com/shipit-dev/shipit/builtins/compose"
	_ "github.com/shipit-dev/shipit/builtins/deploylock"
	_ "github.com/shipit-dev/shipit/builtins/envmod"
	_ "github.com/shipit-dev/shipit/builtins/gitmod"
	_ "github.com/shipit-dev/shipit/builtins/images"
	_ "github.com/shipit-dev/shipit/builtins/jsonmod"
	_ "github.com/shipit-dev/shipit/builtins/lockmod"
	_ "github.com/shipit-dev/shipit/builtins/overridemod"
	_ "github.com/shipit-dev/shipit/builtins/releases"
	_ "github.com/shipit-dev/shipit/builtins/shellmod"
	_ "github.com/shipit-dev/shipit/builtins/streammod"
)
