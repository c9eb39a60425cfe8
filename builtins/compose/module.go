// Package compose is require("shipit.compose"): the host's Compose
// flavour and the wait for a release to become healthy.
package compose

import (
	"context"
	"path"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/hostinfo"
	"github.com/shipit-dev/shipit/internal/compose"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/health"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.compose", Open: open,
		Doc: "The host's Compose (v2 plugin or v1) and the health wait of a release.",
		Funcs: []runtime.Func{
			{Name: "command", Args: "h: shipit.Host", Returns: "string",
				Doc: "`docker compose` or `docker-compose`, detected once per host."},
			{Name: "flavor", Args: "h: shipit.Host", Returns: `"v2"|"v1"`, Doc: "The host's Compose generation."},
			{Name: "prefetch", Args: "h: shipit.Host",
				Doc: "Starts detecting the host's Compose in the background, so that it overlaps a slow step (the deploy lock); the first command or flavor waits for it."},
			{Name: "release", Args: "h: shipit.Host, name: string", Returns: "{dir: string, project: string, files: string[], original: boolean, args: string}",
				Doc: "How a release's compose project is invoked: its project and files (args: the quoted -p/-f words), or original = true for a release the original shipit started (compose ran in its directory)."},
			{Name: "wait_healthy", Args: "h: shipit.Host, opts: {project: string, service: string, timeout?: number|string}",
				Doc: "Waits until every container of the service is healthy, at most timeout (default: [deploy.health_check] timeout), asking Docker every second or every interval if shorter; fails at once when one turns unhealthy or exits, with the container's last log lines, the check probed and its last outputs."},
		}})
}

// releaseSlot holds the host's releases' descriptions, read once per name.
var releaseSlot = runtime.NewHostSlot[compose.Release]("compose.release")

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"command": func(L *lua.LState) int {
			f, err := hostinfo.ComposeFlavor(runtime.CheckHost(L, 1))
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(f.Command))
			return 1
		},
		"flavor": func(L *lua.LState) int {
			f, err := hostinfo.ComposeFlavor(runtime.CheckHost(L, 1))
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(lua.LString(f.Name()))
			return 1
		},
		"prefetch": func(L *lua.LState) int {
			hostinfo.StartComposeFlavor(runtime.CheckHost(L, 1))
			return 0
		},
		"wait_healthy": waitHealthy,
		"release":      release,
	})
}

func waitHealthy(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	hs := runtime.StateOf(L).Env.Health()
	o := struct {
		Project, Service string
		Timeout          time.Duration
	}{Timeout: hs.Timeout}
	runtime.Options(L, 2, &o)
	if o.Project == "" || o.Service == "" {
		L.ArgError(2, "project and service are required")
	}
	run := func(ctx context.Context, cmd string) (string, error) {
		r, err := h.Exec(cmd, false, runtime.RunOpts{Quiet: true})
		return r.Stdout, err
	}
	// Docker re-probes every interval: asking it more often than once a
	// second would only cost round trips.
	opts := health.Options{Project: o.Project, Service: o.Service, Interval: min(hs.Interval, time.Second), Timeout: o.Timeout,
		Check: hs.Describe()}
	if err := health.Wait(h.Context(), run, opts); err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}

// Release describes a release of the host's app, once per host run.
func Release(h *runtime.Host, name string, cfg *config.Config) (compose.Release, error) {
	return releaseSlot.Get(h, name, func() (compose.Release, error) {
		return compose.Describe(h.Context(), h.Conn, path.Join(h.AppPath, "releases", name), h.App, cfg.Deploy.ComposeFile, override.FileName)
	})
}

func release(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	r, err := Release(h, L.CheckString(2), runtime.StateOf(L).Env.Config)
	if err != nil {
		return runtime.Raise(L, err)
	}
	args := ""
	if !r.Original {
		words := []string{"-p", r.Project}
		for _, f := range r.Files {
			words = append(words, "-f", f)
		}
		args = shell.Join(words...)
	}
	L.Push(runtime.ToLua(L, struct {
		Dir, Project string
		Files        []string
		Original     bool
		Args         string
	}{r.Dir, r.Project, r.Files, r.Original, args}))
	return 1
}
