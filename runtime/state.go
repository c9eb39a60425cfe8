package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/health"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/secrets"
)

// Env is shared by all hosts of one command run: configuration and output.
type Env struct {
	Config     *config.Config
	Stage      string
	ProjectDir string // where shipit.toml lives; run_local runs here
	Verbose    bool
	Trace      bool // every remote operation with its duration, and per step host vs local time
	Sink       Sink
	// Redact rewrites every line before it is emitted (secrets -> ***).
	Redact func(string) string
	// Secrets are the stage's decrypted secrets (nil without any), the
	// SHA-256 of their .age file, and why decryption failed if it did: a
	// deploy needs them, other commands only use them for redaction.
	Secrets     map[string]string
	SecretsHash string
	SecretsErr  error
	// LockWait is how long a command queues behind another holder of a
	// host's deploy lock (--lock-wait).
	LockWait time.Duration
	// AllowUnrouted (--allow-unrouted): a release whose domain no Traefik
	// on the host routes still switches, with a warning.
	AllowUnrouted bool

	// Params are command-line values for tasks (e.g. `logs --tail`), seen in
	// Lua as the read-only table `params`.
	Params map[string]string

	shared sync.Map // per-run values of modules (RunSlot), e.g. one local build for all hosts

	healthOnce sync.Once
	health     health.Settings
}

// Health is the app's health settings, built once from Config: what every
// builtin that probes, waits or drains uses.
func (e *Env) Health() health.Settings {
	e.healthOnce.Do(func() { e.health = health.FromConfig(e.Config) })
	return e.health
}

// Routing is the stage's domain and whether a release may switch on a host
// where no Traefik routes it (--allow-unrouted, or the stage's
// allow_unrouted): what the routed wait and `--plan` decide with.
func (e *Env) Routing() (domain string, allowUnrouted bool) {
	allowUnrouted = e.AllowUnrouted
	if e.Config != nil {
		if st := e.Config.Stages[e.Stage]; st != nil {
			domain = st.Traefik.Domain
			allowUnrouted = allowUnrouted || st.Traefik.AllowUnrouted
		}
	}
	return domain, allowUnrouted
}

func (e *Env) emit(ev Event) {
	if e.Redact != nil {
		ev.Text = e.Redact(ev.Text)
		if ev.Item != nil {
			it := *ev.Item
			it.Item, it.Detail, it.Fix = e.Redact(it.Item), e.Redact(it.Detail), e.Redact(it.Fix)
			ev.Item = &it
		}
	}
	if e.Sink != nil {
		e.Sink.Emit(ev)
	}
}

// once runs fn once per key for the whole command run, across hosts; every
// caller gets the first result.
func (e *Env) once(key slotKey, fn func() (any, error)) (any, error) {
	type onceVal struct {
		once sync.Once
		v    any
		err  error
	}
	v, _ := e.shared.LoadOrStore(key, &onceVal{})
	o := v.(*onceVal)
	o.once.Do(func() { o.v, o.err = fn() })
	return o.v, o.err
}

// State is one Lua VM: one per host goroutine (LState is not goroutine-safe).
type State struct {
	L    *lua.LState
	Plan *Plan
	Env  *Env
	Host *Host // nil when only listing tasks

	hostUD *lua.LUserData
}

const stateKey = "__shipit_state"

// NewState builds a sandboxed VM, runs the compiled scripts in order and
// validates the resulting plan. host may be nil (listing tasks).
func NewState(env *Env, host *Host, scripts ...*Compiled) (*State, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, RegistrySize: 1024 * 64, RegistryMaxSize: 1024 * 1024, CallStackSize: 1024})
	s := &State{L: L, Plan: newPlan(), Env: env, Host: host}
	if host != nil {
		host.env = env
		if !host.guarded && host.Conn != nil {
			host.guarded = true
			host.Conn = &guardedConn{Conn: host.Conn, h: host}
		}
		if env.Trace && host.trace == nil && host.Conn != nil {
			host.trace = &traceStats{}
			host.Conn = &tracedConn{Conn: host.Conn, h: host, stats: host.trace}
		}
	}
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.LoadLibName, lua.OpenPackage}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}, {lua.OsLibName, lua.OpenOs}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	// Scripts must not exit the Go process or read arbitrary Lua files.
	for _, name := range []string{"dofile", "loadfile", "module"} {
		L.SetGlobal(name, lua.LNil)
	}
	if os, ok := L.GetGlobal("os").(*lua.LTable); ok {
		for _, name := range []string{"exit", "execute", "remove", "rename", "setlocale", "tmpname"} {
			os.RawSetString(name, lua.LNil)
		}
	}
	ud := L.NewUserData()
	ud.Value = s
	L.SetGlobal(stateKey, ud)
	registerGoErrorType(L)
	registerHostType(L)
	preloadModules(L)
	s.openAPI()
	strictGlobals(L)
	for _, c := range scripts {
		fn := L.NewFunctionFromProto(c.proto)
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			L.Close()
			return nil, mapError(err, "")
		}
	}
	if err := s.Plan.validate(); err != nil {
		L.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the VM.
func (s *State) Close() { s.L.Close() }

// StateOf returns the State that owns L.
func StateOf(L *lua.LState) *State {
	ud, ok := L.GetGlobal(stateKey).(*lua.LUserData)
	if !ok {
		panic("runtime: Lua state without shipit state")
	}
	return ud.Value.(*State)
}

// HostOf returns the host L runs for, raising a Lua error when there is none.
func HostOf(L *lua.LState) *Host {
	h := StateOf(L).Host
	if h == nil {
		L.RaiseError("no host here: this can only run inside a step, hook or task")
	}
	return h
}

// strictGlobals makes reading an undefined global an error instead of nil.
func strictGlobals(L *lua.LState) {
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("undefined global '%s'", L.CheckString(2))
		return 0
	}))
	L.SetMetatable(L.G.Global, mt)
}

func (s *State) openAPI() {
	L := s.L
	reg := func(name string, fn lua.LGFunction) { L.SetGlobal(name, L.NewFunction(fn)) }
	reg("before", func(L *lua.LState) int { return s.hook(L, "before", s.Plan.Before, false) })
	reg("after", func(L *lua.LState) int { return s.hook(L, "after", s.Plan.After, false) })
	reg("once", func(L *lua.LState) int { return s.hook(L, "once", s.Plan.Before, true) })
	reg("on_failure", func(L *lua.LState) int {
		// on_failure(fn) runs whatever fails; on_failure("deploy", fn)
		// only when the deploy task fails.
		task := ""
		if L.Get(1).Type() == lua.LTString {
			task = L.CheckString(1)
			L.Remove(1)
		}
		fn := L.CheckFunction(1)
		s.Plan.OnFailure = append(s.Plan.OnFailure, &Hook{Fn: fn, Source: sourceOf(fn), Task: task})
		return 0
	})
	reg("task", func(L *lua.LState) int {
		name := L.CheckString(1)
		t := &Task{Name: name, Desc: L.OptString(3, "")}
		switch v := L.Get(2).(type) {
		case *lua.LFunction:
			t.Fn, t.Source = v, sourceOf(v)
		case *lua.LTable:
			t.Steps, t.Contract = pipelineSteps(L, v)
			t.Source = strings.TrimSuffix(whereLua(L), ": ")
		default:
			L.ArgError(2, "expected a function or a list of step names")
		}
		s.Plan.define(t)
		return 0
	})
	reg("invoke", s.invoke)
	reg("run_local", func(L *lua.LState) int {
		cmd := L.CheckString(1)
		opts := L.OptTable(2, L.NewTable())
		check := true
		checkOpts(L, opts, "check")
		if v := opts.RawGetString("check"); v != lua.LNil {
			check = lua.LVAsBool(v)
		}
		res, err := s.runLocal(cmd)
		if err != nil && (check || res.Code < 0) {
			return Raise(L, err)
		}
		return pushResult(L, res, check)
	})
	L.SetGlobal("config", configView(L, s.Env.Config))
	params := map[string]string{}
	src := s.Env.Params
	if s.Host != nil && s.Host.Params != nil {
		src = s.Host.Params
	}
	for k, v := range src {
		params[k] = v
	}
	L.SetGlobal("params", configView(L, params))
	L.SetGlobal("log", s.logTable())
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		parts := make([]string, L.GetTop())
		for i := range parts {
			parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
		}
		s.emit(Event{Kind: Info, Text: strings.Join(parts, "\t")})
		return 0
	}))
	L.SetGlobal("fail", L.NewFunction(func(L *lua.LState) int {
		msg := L.CheckString(1)
		// fail() in an embedded recipe is a message for the user: the
		// recipe's file:line would only be noise (and a clue to nothing
		// they can edit). In the user's own scripts it says where.
		if strings.HasPrefix(whereLua(L), "recipes/") {
			L.Error(lua.LString(msg), 0)
			return 0
		}
		L.RaiseError("%s", msg)
		return 0
	}))
}

func (s *State) hook(L *lua.LState, kind string, into map[string][]*Hook, once bool) int {
	name := L.CheckString(1)
	fn := L.CheckFunction(2)
	var o struct{ Once bool }
	Options(L, 3, &o)
	src := sourceOf(fn)
	into[name] = append(into[name], &Hook{Fn: fn, Source: src, Once: once || o.Once})
	s.Plan.hookRefs = append(s.Plan.hookRefs, hookRef{target: name, kind: kind, source: strings.TrimSuffix(whereLua(L), ": ")})
	return 0
}

func (s *State) emit(e Event) {
	if s.Host != nil {
		s.Host.Emit(e)
		return
	}
	s.Env.emit(e)
}

func (s *State) logTable() *lua.LTable {
	L := s.L
	t := L.NewTable()
	for name, kind := range map[string]EventKind{"info": Info, "warn": Warn, "debug": Debug} {
		kind := kind
		L.SetField(t, name, L.NewFunction(func(L *lua.LState) int {
			msg := L.CheckString(1)
			if L.GetTop() > 1 {
				args := make([]any, 0, L.GetTop()-1)
				for i := 2; i <= L.GetTop(); i++ {
					args = append(args, L.ToStringMeta(L.Get(i)).String())
				}
				msg = fmt.Sprintf(strings.ReplaceAll(msg, "%d", "%s"), args...)
			}
			s.emit(Event{Kind: kind, Text: msg})
			return 0
		}))
	}
	return t
}

func (s *State) runLocal(cmd string) (Result, error) {
	ctx := context.Background()
	if s.Host != nil {
		ctx = s.Host.Context()
	}
	s.emit(Event{Kind: Command, Text: "local: " + cmd})
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Dir = s.Env.ProjectDir
	c.Env = secrets.ScrubEnv(os.Environ()) // no SHIPIT_AGE_KEY for build scripts
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			res.Code = ee.ExitCode()
			return res, remote.Failed("local", cmd, res.Code, res.Stderr, "")
		}
		res.Code = -1
		return res, fmt.Errorf("local: %s: %w", cmd, err)
	}
	return res, nil
}

func resultTable(L *lua.LState, r Result) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("stdout", lua.LString(r.Stdout))
	t.RawSetString("stderr", lua.LString(r.Stderr))
	t.RawSetString("code", lua.LNumber(r.Code))
	return t
}

// checkOpts raises on option keys that are not in allowed: a misspelled
// option must not be silently ignored.
func checkOpts(L *lua.LState, opts *lua.LTable, allowed ...string) {
	opts.ForEach(func(k, _ lua.LValue) {
		ks := k.String()
		for _, a := range allowed {
			if ks == a {
				return
			}
		}
		L.RaiseError("unknown option %q (valid: %s)", ks, strings.Join(allowed, ", "))
	})
}

func sourceOf(fn *lua.LFunction) string {
	if fn.Proto == nil {
		return "[go]"
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}

func fileOf(src string) string {
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		return src[:i]
	}
	return src
}

func lineOf(src string) int {
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		return atoi(src[i+1:])
	}
	return 0
}

// pipelineSteps reads a pipeline's list: each entry a step name, or a
// table { "name", sets = { field, ... }, marks = "field" } declaring the
// step's contract (see StepContract).
func pipelineSteps(L *lua.LState, list *lua.LTable) ([]string, map[string]StepContract) {
	var steps []string
	contract := map[string]StepContract{}
	for i := 1; i <= list.Len(); i++ {
		switch e := list.RawGetInt(i).(type) {
		case lua.LString:
			steps = append(steps, string(e))
		case *lua.LTable:
			name, ok := e.RawGetInt(1).(lua.LString)
			if !ok {
				L.ArgError(2, fmt.Sprintf("pipeline entry %d: a step table starts with the step name, e.g. { \"deploy:push\", sets = { \"git_sha\" } }", i))
			}
			var c StepContract
			e.ForEach(func(k, v lua.LValue) {
				switch k.String() {
				case "1":
				case "sets":
					t, ok := v.(*lua.LTable)
					if !ok {
						L.ArgError(2, fmt.Sprintf("%s: sets is a list of field names", name))
					}
					for j := 1; j <= t.Len(); j++ {
						c.Sets = append(c.Sets, lua.LVAsString(t.RawGetInt(j)))
					}
				case "marks":
					c.Marks = lua.LVAsString(v)
				case "barrier":
					c.Barrier = lua.LVAsBool(v)
				default:
					L.ArgError(2, fmt.Sprintf("%s: unknown key %q in a step's contract (keys: sets, marks, barrier)", name, k.String()))
				}
			})
			steps = append(steps, string(name))
			contract[string(name)] = c
		default:
			L.ArgError(2, "a pipeline lists step names, or { name, sets = {...}, marks = \"...\" } tables")
		}
	}
	return steps, contract
}
