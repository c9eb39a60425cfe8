// Package stream is require("shipit.stream"): commands whose output is
// shown live (shipit logs -f, shipit app exec), and commands on a remote
// pseudo-terminal wired to the local one (shipit app exec -t).
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/termio"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.stream", Open: open,
		Doc: "Commands whose output is shown live, and interactive terminals.",
		Funcs: []runtime.Func{
			{Name: "run", Args: "h: shipit.Host, cmd: string, opts?: {follow?: boolean}", Returns: "integer|nil, string?",
				Doc: "Runs cmd, showing each output line as it arrives; returns its exit code, or nil, \"interrupted\" on Ctrl-C. follow: the command is killed when shipit goes away."},
			{Name: "tty", Args: "h: shipit.Host, cmd: string", Returns: "integer",
				Doc: "Runs cmd on a remote pseudo-terminal wired to the local terminal; returns its exit code."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"run": luaRun, "tty": luaTTY})
}

func luaRun(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	cmd := L.CheckString(2)
	var o struct{ Follow bool }
	runtime.Options(L, 3, &o)
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	if o.Follow {
		cmd = remote.FollowWrap(cmd)
	}
	// stdin stays open (nothing is ever written) until the command ends,
	// so the follow watcher only sees EOF when the channel closes.
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	out := &text.Lines{Emit: func(s string) { h.Emit(runtime.Event{Kind: runtime.Info, Text: s}) }}
	code, err := h.Conn.Run(h.Context(), cmd, stdinR, out, out)
	out.Close()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			L.Push(lua.LNil)
			L.Push(lua.LString("interrupted"))
			return 2
		}
		return runtime.Raise(L, fmt.Errorf("host %s: %w", h.Name, err))
	}
	L.Push(lua.LNumber(code))
	return 1
}

func luaTTY(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	cmd := L.CheckString(2)
	pr, ok := h.Conn.(termio.PTYRunner)
	if !ok {
		return runtime.Raise(L, fmt.Errorf("host %s: this connection cannot open a terminal", h.Name))
	}
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	code, err := termio.Run(h.Context(), pr, cmd)
	if err != nil {
		return runtime.Raise(L, fmt.Errorf("host %s: %w", h.Name, err))
	}
	L.Push(lua.LNumber(code))
	return 1
}
