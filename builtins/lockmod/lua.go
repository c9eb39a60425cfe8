// Package lockmod is require("shipit.lock"): shipit.lock encode/decode.
package lockmod

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.lock", Open: open,
		Doc: "encode{current_release, previous_release, git_sha, secrets_hash, deployed_at} -> JSON; decode(text) -> table"})
}

var fields = []string{"current_release", "previous_release", "git_sha", "secrets_hash", "deployed_at"}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			t := L.CheckTable(1)
			t.ForEach(func(k, _ lua.LValue) {
				for _, f := range fields {
					if k.String() == f {
						return
					}
				}
				L.RaiseError("lock: unknown field %q", k.String())
			})
			get := func(k string) string { return lua.LVAsString(t.RawGetString(k)) }
			l := lockfile.Lock{CurrentRelease: get("current_release"), PreviousRelease: get("previous_release"),
				GitSHA: get("git_sha"), SecretsHash: get("secrets_hash"), DeployedAt: get("deployed_at")}
			L.Push(lua.LString(l.Marshal()))
			return 1
		},
		"decode": func(L *lua.LState) int {
			l, err := lockfile.Parse([]byte(L.CheckString(1)))
			if err != nil {
				return runtime.Raise(L, err)
			}
			t := L.NewTable()
			for k, v := range map[string]string{"current_release": l.CurrentRelease, "previous_release": l.PreviousRelease,
				"git_sha": l.GitSHA, "secrets_hash": l.SecretsHash, "deployed_at": l.DeployedAt} {
				t.RawSetString(k, lua.LString(v))
			}
			L.Push(t)
			return 1
		},
	})
}
