// Package all registers every builtin Lua module.
package all

import (
	_ "github.com/shipit-dev/shipit/builtins/accessory"
	_ "github.com/shipit-dev/shipit/builtins/compose"
	_ "github.com/shipit-dev/shipit/builtins/env"
	_ "github.com/shipit-dev/shipit/builtins/git"
	_ "github.com/shipit-dev/shipit/builtins/health"
	_ "github.com/shipit-dev/shipit/builtins/hostlock"
	_ "github.com/shipit-dev/shipit/builtins/http"
	_ "github.com/shipit-dev/shipit/builtins/images"
	_ "github.com/shipit-dev/shipit/builtins/json"
	_ "github.com/shipit-dev/shipit/builtins/lifecycle"
	_ "github.com/shipit-dev/shipit/builtins/lockfile"
	_ "github.com/shipit-dev/shipit/builtins/metrics"
	_ "github.com/shipit-dev/shipit/builtins/override"
	_ "github.com/shipit-dev/shipit/builtins/plan"
	_ "github.com/shipit-dev/shipit/builtins/releases"
	_ "github.com/shipit-dev/shipit/builtins/report"
	_ "github.com/shipit-dev/shipit/builtins/shell"
	_ "github.com/shipit-dev/shipit/builtins/stream"
	_ "github.com/shipit-dev/shipit/builtins/time"
	_ "github.com/shipit-dev/shipit/builtins/traefik"
)
