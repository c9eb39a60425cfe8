// Package accessory is require("shipit.accessory"): the spec of an
// [accessories.NAME] table, the state of its container and its logs.
package accessory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/accessory"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.accessory", Open: open,
		Doc: "Accessories (databases, caches) from [accessories.NAME]: their docker run, state and logs.",
		Funcs: []runtime.Func{
			{Name: "spec", Args: "name: string", Returns: "shipit.AccessorySpec",
				Doc: "What boot runs for the accessory: container name, image, docker run command, config hash, volumes."},
			{Name: "inspect", Args: "h: shipit.Host, container: string", Returns: "shipit.AccessoryState|nil",
				Doc: "The container's state from docker inspect; nil when there is no such container."},
			{Name: "diff", Args: "name: string, recorded_config: string", Returns: "string[]",
				Doc: "What changed between the config recorded on a running container and shipit.toml, one line per change."},
			{Name: "logs", Args: "h: shipit.Host, opts: {container: string, tail?: string, follow?: boolean, since?: string, prefix?: string}",
				Doc: "Streams `docker logs` of a container as host output lines, each prefixed."},
		}})
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"spec":    luaSpec,
		"inspect": luaInspect,
		"diff":    luaDiff,
		"logs":    luaLogs,
	})
}

// specOf builds the spec of the named accessory from the run's config.
func specOf(L *lua.LState, name string) *accessory.Spec {
	env := runtime.StateOf(L).Env
	cfg := env.Config
	a, ok := cfg.Accessories[name]
	if !ok {
		var names []string
		for n := range cfg.Accessories {
			names = append(names, n)
		}
		sort.Strings(names)
		fix := "none (add an [accessories.NAME] table to shipit.toml)"
		if len(names) > 0 {
			fix = strings.Join(names, ", ")
		}
		runtime.Raise(L, hint.New(fmt.Sprintf("no accessory %q in %s", name, cfg.Path), "defined accessories: "+fix))
		return nil
	}
	s, err := accessory.Build(cfg.App.Name, env.Stage, name, a)
	if err != nil {
		runtime.Raise(L, err)
		return nil
	}
	return s
}

func luaSpec(L *lua.LState) int {
	s := specOf(L, L.CheckString(1))
	L.Push(runtime.ToLua(L, struct {
		Name, Container, Image, Hash, Run, EnvFile string
		VolumeCreate, NamedVolumes, Ports, Volumes []string
	}{s.Name, s.Container, s.Image, s.Hash, s.RunCommand(), s.EnvFile(),
		s.VolumeCreateCommands(), s.NamedVolumes(), s.Ports, s.Summary.Volumes}))
	return 1
}

func luaInspect(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	name := L.CheckString(2)
	cmd := shell.Join("docker", "container", "inspect", name)
	res, err := h.Exec(cmd, true, runtime.RunOpts{Quiet: true})
	if err != nil {
		return runtime.Raise(L, err)
	}
	if res.Code != 0 {
		if strings.Contains(strings.ToLower(res.Stderr), "no such") {
			L.Push(lua.LNil)
			return 1
		}
		return runtime.Raise(L, remote.Failed(h.Name, cmd, res.Code, res.Stderr, ""))
	}
	st, err := accessory.ParseInspect([]byte(res.Stdout))
	if err != nil {
		return runtime.Raise(L, fmt.Errorf("host %s: container %s: %w", h.Name, name, err))
	}
	L.Push(runtime.ToLua(L, st))
	return 1
}

func luaDiff(L *lua.LState) int {
	s := specOf(L, L.CheckString(1))
	L.Push(runtime.ToLua(L, accessory.Diff(L.CheckString(2), s)))
	return 1
}

// luaLogs streams `docker logs` as it arrives (h:run would buffer until
// the command ends, which never happens with follow).
func luaLogs(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	var o struct {
		Container, Tail, Since, Prefix string
		Follow                         bool
	}
	runtime.Options(L, 2, &o)
	if o.Container == "" {
		L.ArgError(2, "container is required")
	}
	args := []string{"docker", "logs"}
	if o.Tail != "" {
		if _, err := strconv.Atoi(o.Tail); err != nil && o.Tail != "all" {
			return runtime.Raise(L, hint.New(fmt.Sprintf("--tail %q is not a number", o.Tail), "use --tail 100 (lines) or --tail all"))
		}
		args = append(args, "--tail", o.Tail)
	}
	if o.Since != "" {
		args = append(args, "--since", o.Since)
	}
	if o.Follow {
		args = append(args, "--follow")
	}
	cmd := shell.Join(append(args, o.Container)...)
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	out := &text.Lines{Emit: func(s string) { h.Emit(runtime.Event{Kind: runtime.Info, Text: o.Prefix + s}) }}
	code, err := h.Conn.Run(h.Context(), cmd, nil, out, out)
	out.Close()
	if err != nil {
		if h.Context().Err() != nil {
			return 0 // interrupted while following: the user is done reading
		}
		return runtime.Raise(L, fmt.Errorf("host %s: %s: %w", h.Name, cmd, err))
	}
	if code != 0 {
		return runtime.Raise(L, remote.Failed(h.Name, cmd, code, "", ""))
	}
	return 0
}
