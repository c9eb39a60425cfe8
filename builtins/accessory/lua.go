package accessory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.accessory", Open: open,
		Doc: "spec(name) -> {name, container, image, hash, run, env_file, volume_create, named_volumes, ports, volumes}; " +
			"inspect(h, container) -> nil | {managed, hash, config, status, running, started_at, finished_at, exit_code, restart_count, image, restart, networks, ports, mounts}; " +
			"diff(name, recorded_config) -> {change...}; logs(h, {container, tail, follow, since, prefix})"})
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
func specOf(L *lua.LState, name string) *Spec {
	env := runtime.StateOf(L).Env
	cfg := env.Config
	a, ok := cfg.Accessories[name]
	if !ok {
		var names []string
		for n := range cfg.Accessories {
			names = append(names, n)
		}
		sort.Strings(names)
		runtime.Raise(L, &Error{fmt.Sprintf("no accessory %q in %s", name, cfg.Path),
			"defined accessories: " + orNone(names)})
		return nil
	}
	s, err := Build(cfg.App.Name, env.Stage, name, a)
	if err != nil {
		runtime.Raise(L, err)
		return nil
	}
	return s
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none (add an [accessories.NAME] table to shipit.toml)"
	}
	return strings.Join(names, ", ")
}

func strList(L *lua.LState, l []string) *lua.LTable {
	t := L.NewTable()
	for _, s := range l {
		t.Append(lua.LString(s))
	}
	return t
}

func luaSpec(L *lua.LState) int {
	s := specOf(L, L.CheckString(1))
	t := L.NewTable()
	t.RawSetString("name", lua.LString(s.Name))
	t.RawSetString("container", lua.LString(s.Container))
	t.RawSetString("image", lua.LString(s.Image))
	t.RawSetString("hash", lua.LString(s.Hash))
	t.RawSetString("run", lua.LString(s.RunCommand()))
	t.RawSetString("env_file", lua.LString(s.EnvFile()))
	t.RawSetString("volume_create", strList(L, s.VolumeCreateCommands()))
	t.RawSetString("named_volumes", strList(L, s.NamedVolumes()))
	t.RawSetString("ports", strList(L, s.Ports))
	t.RawSetString("volumes", strList(L, s.Summary.Volumes))
	L.Push(t)
	return 1
}

// inspected is the part of `docker inspect` the recipe uses.
type inspected struct {
	Config struct {
		Image  string
		Labels map[string]string
	}
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		StartedAt  string
		FinishedAt string
		ExitCode   int
	}
	HostConfig struct {
		RestartPolicy struct{ Name string }
	}
	NetworkSettings struct {
		Networks map[string]json.RawMessage
		Ports    map[string][]struct{ HostIp, HostPort string }
	}
	Mounts []struct {
		Type, Name, Source, Destination string
		RW                              bool
	}
}

func luaInspect(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	name := L.CheckString(2)
	res, err := h.Exec(shell.Join("docker", "container", "inspect", name), true, runtime.RunOpts{Quiet: true})
	if err != nil {
		return runtime.Raise(L, err)
	}
	if res.Code != 0 {
		if strings.Contains(strings.ToLower(res.Stderr), "no such") {
			L.Push(lua.LNil)
			return 1
		}
		return runtime.Raise(L, &runtime.RemoteError{Host: h.Name, Cmd: "docker container inspect " + name, Code: res.Code, Stderr: runtime.Tail(res.Stderr, 15)})
	}
	var list []inspected
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil || len(list) != 1 {
		return runtime.Raise(L, fmt.Errorf("host %s: cannot read docker inspect of %s: %v", h.Name, name, err))
	}
	c := list[0]
	t := L.NewTable()
	labels := c.Config.Labels
	t.RawSetString("managed", lua.LBool(labels[LabelAccessory] != ""))
	t.RawSetString("app", lua.LString(labels[LabelApp]))
	t.RawSetString("accessory", lua.LString(labels[LabelAccessory]))
	t.RawSetString("hash", lua.LString(labels[LabelHash]))
	t.RawSetString("config", lua.LString(labels[LabelConfig]))
	t.RawSetString("status", lua.LString(c.State.Status))
	t.RawSetString("running", lua.LBool(c.State.Running))
	t.RawSetString("started_at", lua.LString(c.State.StartedAt))
	t.RawSetString("finished_at", lua.LString(c.State.FinishedAt))
	t.RawSetString("exit_code", lua.LNumber(c.State.ExitCode))
	t.RawSetString("restart_count", lua.LNumber(c.RestartCount))
	t.RawSetString("image", lua.LString(c.Config.Image))
	t.RawSetString("restart", lua.LString(c.HostConfig.RestartPolicy.Name))
	var nets []string
	for n := range c.NetworkSettings.Networks {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	t.RawSetString("networks", strList(L, nets))
	var ports []string
	for ctr, binds := range c.NetworkSettings.Ports {
		for _, b := range binds {
			ports = append(ports, b.HostIp+":"+b.HostPort+"->"+ctr)
		}
	}
	sort.Strings(ports)
	t.RawSetString("ports", strList(L, ports))
	var mounts []string
	for _, m := range c.Mounts {
		src := m.Source
		if m.Type == "volume" {
			src = m.Name
		}
		s := m.Type + " " + src + ":" + m.Destination
		if !m.RW {
			s += ":ro"
		}
		mounts = append(mounts, s)
	}
	t.RawSetString("mounts", strList(L, mounts))
	L.Push(t)
	return 1
}

func luaDiff(L *lua.LState) int {
	s := specOf(L, L.CheckString(1))
	L.Push(strList(L, Diff(L.CheckString(2), s)))
	return 1
}

// luaLogs streams `docker logs` as it arrives (h:run would buffer until
// the command ends, which never happens with follow).
func luaLogs(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	o := L.CheckTable(2)
	ctr := lua.LVAsString(o.RawGetString("container"))
	if ctr == "" {
		L.ArgError(2, "container is required")
	}
	args := []string{"docker", "logs"}
	if tail := lua.LVAsString(o.RawGetString("tail")); tail != "" {
		if _, err := strconv.Atoi(tail); err != nil && tail != "all" {
			return runtime.Raise(L, &Error{fmt.Sprintf("--tail %q is not a number", tail), "use --tail 100 (lines) or --tail all"})
		}
		args = append(args, "--tail", tail)
	}
	if since := lua.LVAsString(o.RawGetString("since")); since != "" {
		args = append(args, "--since", since)
	}
	if lua.LVAsBool(o.RawGetString("follow")) {
		args = append(args, "--follow")
	}
	args = append(args, ctr)
	prefix := lua.LVAsString(o.RawGetString("prefix"))
	cmd := shell.Join(args...)
	h.Emit(runtime.Event{Kind: runtime.Command, Text: cmd})
	var mu sync.Mutex // both streams' lines go to one sink
	out := &lines{emit: func(s string) {
		mu.Lock()
		defer mu.Unlock()
		h.Emit(runtime.Event{Kind: runtime.Info, Text: prefix + s})
	}}
	errw := &lines{emit: out.emit}
	code, err := h.Conn.Run(h.Context(), cmd, nil, out, errw)
	out.close()
	errw.close()
	if err != nil {
		if h.Context().Err() != nil {
			return 0 // interrupted while following: the user is done reading
		}
		return runtime.Raise(L, fmt.Errorf("host %s: %s: %w", h.Name, cmd, err))
	}
	if code != 0 {
		return runtime.Raise(L, &runtime.RemoteError{Host: h.Name, Cmd: cmd, Code: code})
	}
	return 0
}

// lines splits a stream into lines. It is locked because a cancelled Run
// may return before the SSH session stops copying into it; writes after
// close are dropped.
type lines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
	emit   func(string)
}

func (w *lines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf.Next(i + 1))
		w.emit(strings.TrimRight(line, "\r\n"))
	}
}

// close emits a last unterminated line and drops later writes.
func (w *lines) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
	w.closed = true
}
