// Package overridemod is require("shipit.override"): generates the
// release's docker-compose.override.yml.
package overridemod

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.override", Open: open,
		Doc: "ensure_network_cmd (shell command); generate{app, stage, release, web_service, compose_v1, domain, tls, port, path, health_cmd, interval, timeout, retries, env_file, images, base} -> YAML text"})
}

var keys = []string{"app", "stage", "release", "web_service", "compose_v1", "domain", "tls", "port", "path",
	"health_cmd", "interval", "timeout", "retries", "env_file", "images", "base", "cert_resolver"}

func open(L *lua.LState) *lua.LTable {
	mod := L.NewTable()
	// ensure_network_cmd creates the external traefik network if missing.
	mod.RawSetString("ensure_network_cmd", lua.LString(override.EnsureNetworkCmd))
	return L.SetFuncs(mod, map[string]lua.LGFunction{
		"generate": func(L *lua.LState) int {
			t := L.CheckTable(1)
			t.ForEach(func(k, _ lua.LValue) {
				for _, key := range keys {
					if k.String() == key {
						return
					}
				}
				L.RaiseError("override.generate: unknown key %q", k.String())
			})
			s := func(k string) string { return lua.LVAsString(t.RawGetString(k)) }
			p := override.Params{
				App: s("app"), Stage: s("stage"), Release: s("release"), WebService: s("web_service"),
				ComposeV1: lua.LVAsBool(t.RawGetString("compose_v1")),
				Domain:    s("domain"), TLS: lua.LVAsBool(t.RawGetString("tls")), CertResolver: s("cert_resolver"),
				Port: int(lua.LVAsNumber(t.RawGetString("port"))), Path: s("path"), HealthCmd: s("health_cmd"),
				Interval: s("interval"), Timeout: s("timeout"), Retries: int(lua.LVAsNumber(t.RawGetString("retries"))),
				EnvFile: s("env_file"), BaseCompose: []byte(s("base")),
			}
			if imgs, ok := t.RawGetString("images").(*lua.LTable); ok {
				p.Images = map[string]string{}
				imgs.ForEach(func(k, v lua.LValue) { p.Images[k.String()] = v.String() })
			}
			out, err := override.Generate(p)
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(out))
			return 1
		},
	})
}
