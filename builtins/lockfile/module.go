// Package lockfile is require("shipit.lockfile"): shipit.lock encoding.
package lockfile

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.lockfile", Open: open,
		Doc: "shipit.lock, the JSON file naming the current and previous release on each host.",
		Funcs: []runtime.Func{
			{Name: "encode", Args: "lock: shipit.Lock", Returns: "string", Doc: "The file's JSON, fields in the spec's order."},
			{Name: "decode", Args: "text: string", Returns: "shipit.Lock", Doc: "Parses the file; absent fields are \"\"; raises on invalid JSON."},
		}})
}

// lock is shipit.lock as Lua sees it.
type lock struct {
	CurrentRelease, PreviousRelease, GitSha, SecretsHash, DeployedAt string
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			var l lock
			runtime.Options(L, 1, &l)
			L.Push(lua.LString(lockfile.Lock{CurrentRelease: l.CurrentRelease, PreviousRelease: l.PreviousRelease,
				GitSHA: l.GitSha, SecretsHash: l.SecretsHash, DeployedAt: l.DeployedAt}.Marshal()))
			return 1
		},
		"decode": func(L *lua.LState) int {
			l, err := lockfile.Parse([]byte(L.CheckString(1)))
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(runtime.ToLua(L, lock{l.CurrentRelease, l.PreviousRelease, l.GitSHA, l.SecretsHash, l.DeployedAt}))
			return 1
		},
	})
}
