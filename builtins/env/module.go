// Package env is require("shipit.env"): the host's merged environment
// (shipit.toml env < `shipit config` < secrets), per-release snapshots and
// their restore on rollback.
package env

import (
	"path"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/hostinfo"
	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.env", Open: open,
		Doc: "The app's environment on the host: shared/.env from its three sources, snapshots per release.",
		Funcs: []runtime.Func{
			{Name: "sync", Args: "h: shipit.Host", Returns: "{written: boolean, secrets_hash: string, keys: integer}",
				Doc: "Writes shared/.env (0600) when shipit.toml env, `shipit config` values or secrets changed."},
			{Name: "snapshot", Args: "h: shipit.Host, release?: string, opts?: {link?: boolean}",
				Doc: "Copies shared/.env into the release (h.release by default): what a rollback to it restores. link = true also links the release's .env to shared/.env, in the same command."},
			{Name: "restore", Args: "h: shipit.Host, release: string",
				Doc: "Makes a release's snapshot the shared env (a rollback runs old code with the env it was deployed with)."},
			{Name: "backup", Args: "h: shipit.Host",
				Doc: "Keeps the shared env in .shipit/env.undo before a change; the host's journal puts it back if the change is undone."},
		}})
}

func run(L *lua.LState, h *runtime.Host, cmd string) int {
	if _, err := h.Exec(cmd, false, runtime.RunOpts{}); err != nil {
		return runtime.Raise(L, err)
	}
	return 0
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
			if f, err := hostinfo.ComposeFlavor(h); err == nil {
				src.ComposeV1 = f.V1
			}
			res, err := envsync.Sync(h.Context(), h.Conn, h.AppPath, src)
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(runtime.ToLua(L, res))
			return 1
		},
		"snapshot": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			rel := h.ReleasePath()
			if name := L.OptString(2, ""); name != "" {
				rel = path.Join(h.AppPath, "releases", name)
			}
			o := struct{ Link bool }{}
			runtime.Options(L, 3, &o)
			cmd := envsync.SnapshotCmd(h.AppPath, rel)
			if o.Link {
				cmd = shell.Join("ln", "-sfn", "../../"+envsync.EnvFile, path.Join(rel, ".env")) + " && " + cmd
			}
			return run(L, h, cmd)
		},
		"restore": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			return run(L, h, envsync.RestoreCmd(h.AppPath, path.Join(h.AppPath, "releases", L.CheckString(2))))
		},
		"backup": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			return run(L, h, envsync.BackupCmd(h.AppPath))
		},
	})
}
