// Package hostlock is require("shipit.hostlock"): the per-host deploy lock.
package hostlock

import (
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/hostlock"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.hostlock", Open: open,
		Doc: "The per-host deploy lock: one deploy, rollback or setup of an app at a time.",
		Funcs: []runtime.Func{
			{Name: "acquire", Args: "h: shipit.Host, what?: string",
				Doc: "Takes the app's lock on the host until this host's run ends; raises, naming the holder, when another shipit holds it."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"acquire": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			host, _ := os.Hostname()
			holder := fmt.Sprintf("%s by %s@%s since %s", L.OptString(2, "deploy"), os.Getenv("USER"), host, time.Now().UTC().Format(time.RFC3339))
			lock, err := hostlock.Acquire(h.Context(), h.Conn, h.AppPath, holder)
			if err != nil {
				return runtime.Raise(L, err)
			}
			if lock == nil {
				h.Emit(runtime.Event{Kind: runtime.Warn, Text: "flock(1) not found on host: concurrent deploys are not prevented"})
				return 0
			}
			h.Defer(lock.Release)
			return 0
		},
	})
}
