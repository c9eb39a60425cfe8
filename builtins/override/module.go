// Package override is require("shipit.override"): the release's
// docker-compose.override.yml.
package override

import (
	lua "github.com/yuin/gopher-lua"

	"path"

	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/probe"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.override", Open: open,
		Doc: "The docker-compose.override.yml of a release: Traefik labels and network, health check, env file, images.",
		Funcs: []runtime.Func{
			{Name: "ensure_network_cmd", Value: true, Returns: "string",
				Doc: "Shell command creating the external traefik network when missing (safe to run concurrently)."},
			{Name: "generate", Args: "params: shipit.OverrideParams", Returns: "string, string[]",
				Doc: "The override YAML, with the web service's health check from [deploy.health_check], and notes to tell the user (published ports it removed); raises with a hint when the base compose file cannot be deployed (published ports on compose v1, container_name...)."},
			{Name: "install_probe", Args: "h: shipit.Host, dir: string",
				Doc: "Links shipit's health probe (a static binary for the host's architecture, sent once per host and version) into the release directory dir's .shipit-run, which the web service mounts: the health check needs nothing in the image."},
		}})
}

// params mirrors override.Params with Lua names.
type params struct {
	App, Stage, Release, WebService string
	ComposeV1                       bool `lua:"compose_v1"`
	Domain                          string
	TLS                             bool `lua:"tls"`
	CertResolver                    string
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
			out, notes, err := override.GenerateWithNotes(override.Params{
				App: p.App, Stage: p.Stage, Release: p.Release, WebService: p.WebService, ComposeV1: p.ComposeV1,
				Domain: p.Domain, TLS: p.TLS, CertResolver: p.CertResolver,
				Health:  runtime.StateOf(L).Env.Health(),
				EnvFile: p.EnvFile, Images: p.Images, BaseCompose: []byte(p.Base),
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(out))
			L.Push(runtime.ToLua(L, notes))
			return 2
		},
		"install_probe": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			dir := L.CheckString(2)
			if err := probe.Install(h.Context(), h.Conn, h.AppPath, path.Join(dir, override.RunDir)); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
	})
}
