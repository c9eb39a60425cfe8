// Package override is require("shipit.override"): the release's
// docker-compose.override.yml.
package override

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.override", Open: open,
		Doc: "The docker-compose.override.yml of a release: Traefik labels and network, health check, env file, images.",
		Funcs: []runtime.Func{
			{Name: "ensure_network_cmd", Value: true, Returns: "string",
				Doc: "Shell command creating the external traefik network when missing (safe to run concurrently)."},
			{Name: "generate", Args: "params: shipit.OverrideParams", Returns: "string",
				Doc: "The override YAML; raises with a hint when the base compose file cannot be deployed (published ports on compose v1, container_name...)."},
		}})
}

// params mirrors override.Params with Lua names.
type params struct {
	App, Stage, Release, WebService string
	ComposeV1                       bool `lua:"compose_v1"`
	Domain                          string
	TLS                             bool `lua:"tls"`
	CertResolver                    string
	Port                            int
	Path, HealthCmd                 string
	Interval, Timeout, StartPeriod  string
	Retries                         int
	EnvFile                         string
	Images                          map[string]string
	Base                            string
}

func open(L *lua.LState) *lua.LTable {
	mod := L.NewTable()
	mod.RawSetString("ensure_network_cmd", lua.LString(override.EnsureNetworkCmd))
	return L.SetFuncs(mod, map[string]lua.LGFunction{
		"generate": func(L *lua.LState) int {
			var p params
			runtime.Options(L, 1, &p)
			out, err := override.Generate(override.Params{
				App: p.App, Stage: p.Stage, Release: p.Release, WebService: p.WebService, ComposeV1: p.ComposeV1,
				Domain: p.Domain, TLS: p.TLS, CertResolver: p.CertResolver, Port: p.Port, Path: p.Path,
				HealthCmd: p.HealthCmd, Interval: p.Interval, Timeout: p.Timeout, Retries: p.Retries, StartPeriod: p.StartPeriod,
				EnvFile: p.EnvFile, Images: p.Images, BaseCompose: []byte(p.Base),
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(out))
			return 1
		},
	})
}
