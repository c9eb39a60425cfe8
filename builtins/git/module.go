// Package git is require("shipit.git"): pushes code over the host's pooled
// SSH connection, no ssh binary needed.
package git

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/gitpush"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.git", Open: open,
		Doc: "Code push to the host's bare repository, as an incremental git bundle over SFTP.",
		Funcs: []runtime.Func{
			{Name: "push", Args: "h: shipit.Host, opts: {branch: string, repo: string}",
				Returns: "{sha: string, bytes: integer, incremental: boolean, skipped: boolean}",
				Doc:     "Makes the host's bare repo hold the branch's commit; sends only what the host lacks."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"push": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			var o struct{ Branch, Repo string }
			runtime.Options(L, 2, &o)
			res, err := gitpush.Push(h.Context(), h.Conn, gitpush.Options{
				LocalRepo:  runtime.StateOf(L).Env.ProjectDir,
				Branch:     o.Branch,
				RemoteRepo: o.Repo,
				Logf: func(format string, args ...any) {
					h.Emit(runtime.Event{Kind: runtime.Debug, Text: fmt.Sprintf(format, args...)})
				},
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(runtime.ToLua(L, res))
			return 1
		},
	})
}
