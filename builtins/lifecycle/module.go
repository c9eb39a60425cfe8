// Package lifecycle is require("shipit.lifecycle"): a release's lifecycle
// on the host (drain, stop, switch current, write shipit.lock), run by the
// same shell functions the host's lock holder uses to settle a run without
// shipit (internal/lifecycle).
package lifecycle

import (
	"path"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/builtins/hostinfo"
	"github.com/shipit-dev/shipit/internal/lifecycle"
	"github.com/shipit-dev/shipit/internal/probe"
	"github.com/shipit-dev/shipit/internal/traefik"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.lifecycle", Open: open,
		Doc: "A release's lifecycle on the host: drain, stop, switch current, write shipit.lock. One implementation, shared with the host's lock holder, which settles an interrupted deploy with the same steps and timeouts.",
		Funcs: []runtime.Func{
			{Name: "drain", Args: "h: shipit.Host, opts: {project: string, dir: string, timeout?: number|string}", Returns: "string, boolean",
				Doc: "Takes the project's routed containers out of Traefik's rotation (the drain marker in dir fails their health check) and waits, on the host, until Traefik no longer routes to them (its API, else Docker's unhealthy plus Traefik's throttle), at most timeout (default: [deploy] drain_timeout). Returns what happened, and whether they are out of rotation (false: timed out or no drain could be made; not an error)."},
			{Name: "stop", Args: "h: shipit.Host, opts: {project: string, dir: string, grace?: integer, down_args?: string}",
				Doc: "Drains the release in dir (compose project), stops it with [deploy] stop_timeout as grace period (grace instead once drained, when shorter: see shipit.traefik's stop_grace) and removes its containers (`down --remove-orphans` plus down_args, e.g. \"--rmi local\"). Raises only when containers of it still run afterwards. Under the deploy lock it waits for the host's holder and never runs once the holder settled the run."},
			{Name: "drain_marker", Args: "dir: string", Returns: "string",
				Doc: "The drain marker of the release in dir: while it exists, the release's health check fails (remove it before starting a drained release again)."},
			{Name: "switch", Args: "h: shipit.Host, release: string",
				Doc: "Points <app>/current at releases/<release> (a symlink replaced by an atomic rename)."},
			{Name: "write_lock", Args: "h: shipit.Host, lock: {current_release: string, previous_release?: string, git_sha?: string, secrets_hash?: string, stamp?: boolean}",
				Doc: "Writes shipit.lock atomically, deployed_at now; stamp also records the time in the release's .shipit-deployed-at. Names must be release names, git_sha and secrets_hash lowercase hex."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"drain": Drain,
		"drain_marker": func(L *lua.LState) int {
			L.Push(lua.LString(path.Join(L.CheckString(1), probe.DrainMarker)))
			return 1
		},
		"stop":       stop,
		"switch":     switchCurrent,
		"write_lock": writeLock,
	})
}

// runner runs lifecycle commands for h's app, behind h's lock when held.
func runner(h *runtime.Host) lifecycle.Runner {
	return lifecycle.Runner{Conn: h.Conn, AppPath: h.AppPath, Guard: h.GuardPrefix(),
		Logf: func(s string) { h.Emit(runtime.Event{Kind: runtime.Info, Text: s}) }}
}

// settings are the app's timeouts and the host's compose command; a
// release without a drain marker (the original shipit's) is prepared for
// the drain first (traefik.PrepareForeign).
func settings(L *lua.LState, h *runtime.Host, dir, project string) (lifecycle.Settings, string) {
	f, err := hostinfo.ComposeFlavor(h)
	if err != nil {
		runtime.Raise(L, err)
	}
	hs := runtime.StateOf(L).Env.Health()
	s := lifecycle.Settings{Compose: f.Command, DrainTimeout: hs.DrainTimeout, StopTimeout: hs.StopTimeout}
	marked, err := h.Conn.Exists(h.Context(), path.Join(dir, path.Dir(probe.DrainMarker)))
	if err != nil {
		runtime.Raise(L, err)
	}
	if marked {
		return s, ""
	}
	mode, msg, err := traefik.PrepareForeign(h.Context(), h.Conn, project)
	if err != nil {
		runtime.Raise(L, err)
	}
	s.Foreign = lifecycle.Foreign(mode)
	return s, msg
}

// Drain is lifecycle.drain (shipit.traefik's drain is the same function).
func Drain(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := struct {
		Project, Dir string
		Timeout      time.Duration
	}{}
	runtime.Options(L, 2, &o)
	if o.Project == "" || o.Dir == "" {
		L.ArgError(2, "project and dir (the release's directory) are required")
	}
	s, msg := settings(L, h, o.Dir, o.Project)
	if o.Timeout > 0 {
		s.DrainTimeout = o.Timeout
	}
	if msg != "" {
		L.Push(lua.LString(msg))
		L.Push(lua.LFalse)
		return 2
	}
	said, drained, err := runner(h).Drain(h.Context(), s, o.Dir, o.Project)
	if err != nil {
		return runtime.Raise(L, err)
	}
	L.Push(lua.LString(said))
	L.Push(lua.LBool(drained))
	return 2
}

func stop(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := struct {
		Project, Dir, DownArgs string
		Grace                  int
	}{}
	runtime.Options(L, 2, &o)
	if o.Project == "" || o.Dir == "" {
		L.ArgError(2, "project and dir (the release's directory) are required")
	}
	s, msg := settings(L, h, o.Dir, o.Project)
	if msg != "" {
		h.Emit(runtime.Event{Kind: runtime.Info, Text: msg})
	}
	if o.Grace > 0 {
		s.GraceDrained = time.Duration(o.Grace) * time.Second
	}
	var down []string
	if o.DownArgs != "" {
		down = strings.Fields(o.DownArgs)
	}
	if err := runner(h).Stop(h.Context(), s, o.Dir, o.Project, down...); err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}

func switchCurrent(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	if err := runner(h).Switch(h.Context(), L.CheckString(2)); err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}

func writeLock(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := struct {
		CurrentRelease, PreviousRelease, GitSha, SecretsHash string
		Stamp                                                bool
	}{}
	runtime.Options(L, 2, &o)
	err := runner(h).WriteLock(h.Context(), lifecycle.Lock{Current: o.CurrentRelease, Previous: o.PreviousRelease,
		GitSHA: o.GitSha, SecretsHash: o.SecretsHash, Stamp: o.Stamp})
	if err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}
