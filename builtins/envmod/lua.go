// Package envmod is require("shipit.env"): the host's merged environment
// (shipit.toml env < `shipit config` < secrets), per-release snapshots and
// their restore on rollback.
package envmod

import (
	"path"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/compose"
	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.env", Open: open,
		Doc: "sync(h) -> {written, secrets_hash, keys}; snapshot(h); restore(h, release); undo_restore(h)"})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"sync": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			env := runtime.StateOf(L).Env
			src := envsync.Sources{Secrets: env.Secrets, SecretsHash: env.SecretsHash, SecretsErr: env.SecretsErr}
			if st := env.Config.Stages[h.Stage]; st != nil {
				src.Stage = st.Env
			}
			if f, err := compose.Detect(h); err == nil {
				src.ComposeV1 = f.V1
			}
			res, err := envsync.Sync(h.Context(), h.Conn, h.AppPath, src)
			if err != nil {
				return runtime.Raise(L, err)
			}
			t := L.NewTable()
			t.RawSetString("written", lua.LBool(res.Written))
			t.RawSetString("secrets_hash", lua.LString(res.SecretsHash))
			t.RawSetString("keys", lua.LNumber(res.Keys))
			L.Push(t)
			return 1
		},
		"snapshot": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			if _, err := h.Exec(envsync.SnapshotCmd(h.AppPath, h.ReleasePath()), false, runtime.RunOpts{}); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
		"restore": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			rel := path.Join(h.AppPath, "releases", L.CheckString(2))
			if _, err := h.Exec(envsync.RestoreCmd(h.AppPath, rel), false, runtime.RunOpts{}); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
		"undo_restore": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			if _, err := h.Exec(envsync.UndoRestoreCmd(h.AppPath), false, runtime.RunOpts{}); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
	})
}
