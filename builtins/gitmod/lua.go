// Package gitmod is require("shipit.git"): pushes code over the host's
// pooled SSH connection, no ssh binary needed.
package gitmod

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/gitpush"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.git", Open: open,
		Doc: "push(h, {branch, repo}) -> {sha, bytes, incremental, skipped}; local_sha(branch) -> sha"})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"push": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := L.CheckTable(2)
			st := runtime.StateOf(L)
			opts := gitpush.Options{
				LocalRepo:  st.Env.ProjectDir,
				Branch:     lua.LVAsString(o.RawGetString("branch")),
				RemoteRepo: lua.LVAsString(o.RawGetString("repo")),
				Logf: func(format string, args ...any) {
					h.Emit(runtime.Event{Kind: runtime.Debug, Text: sprintf(format, args...)})
				},
			}
			res, err := gitpush.Push(h.Context(), h.Conn, opts)
			if err != nil {
				return runtime.Raise(L, err)
			}
			t := L.NewTable()
			t.RawSetString("sha", lua.LString(res.SHA))
			t.RawSetString("bytes", lua.LNumber(res.Bytes))
			t.RawSetString("incremental", lua.LBool(res.Incremental))
			t.RawSetString("skipped", lua.LBool(res.Skipped))
			L.Push(t)
			return 1
		},
	})
}
