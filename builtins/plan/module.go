// Package plan is require("shipit.plan"): what `deploy --plan` and
// `rollback --plan` read of a host, for the recipe's deploy:plan and
// rollback:plan tasks to show. It changes nothing on the host.
package plan

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/plan"
	"github.com/shipit-dev/shipit/runtime"
)

const facts = "{current: string, current_sha: string, target: string, target_sha: string, commits: string[], commits_err: string, " +
	"env_added: string[], env_changed: string[], env_removed: string[], locked: string, proxy: boolean, routing: string}"

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.plan", Open: open,
		Doc: "What a deploy or a rollback would change on a host, read without changing anything (deploy --plan, rollback --plan).",
		Funcs: []runtime.Func{
			{Name: "deploy", Args: "h: shipit.Host, opts: {target: string, sha: string}", Returns: facts,
				Doc: "A deploy of commit sha as release target: the release and commit now serving, the commits between (newest first), the env keys the deploy would add, change or remove (never their values), who holds the lock, and whether Traefik routes the stage's domain (routing: what the routed wait would do)."},
			{Name: "rollback", Args: "h: shipit.Host, opts: {target?: string}", Returns: facts,
				Doc: "A rollback to target (default: previous_release of shipit.lock); raises when there is none."},
		}})
}

type opts struct{ Target, Sha string }

func open(L *lua.LState) *lua.LTable {
	read := func(command string) lua.LGFunction {
		return func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			var o opts
			runtime.Options(L, 2, &o)
			e := runtime.StateOf(L).Env
			appPath := e.Config.AppPath()
			var p plan.Host
			var err error
			if command == "deploy" {
				var stageEnv map[string]string
				if st := e.Config.Stages[e.Stage]; st != nil {
					stageEnv = st.Env
				}
				p, err = plan.Deploy(h.Context(), h.Conn, appPath, e.ProjectDir, o.Sha, stageEnv, e.Secrets)
				p.Target = o.Target
			} else {
				p, err = plan.Rollback(h.Context(), h.Conn, appPath, e.ProjectDir, o.Target)
			}
			if err != nil {
				return runtime.Raise(L, err)
			}
			domain, allow := e.Routing()
			p.Routing = plan.RoutingLine(domain, allow, p.Proxy, command)
			L.Push(runtime.ToLua(L, p))
			return 1
		}
	}
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"deploy":   read("deploy"),
		"rollback": read("rollback"),
	})
}
