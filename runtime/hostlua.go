package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
)

const hostType = "shipit.host"

var hostMethods = map[string]lua.LGFunction{
	"run":    hostRun,
	"put":    hostPut,
	"exists": hostExists,
	"read":   hostRead,
}

func registerHostType(L *lua.LState) {
	mt := L.NewTypeMetatable(hostType)
	L.SetField(mt, "__index", L.NewFunction(hostIndex))
	L.SetField(mt, "__newindex", L.NewFunction(hostNewIndex))
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("host " + checkHost(L).Name))
		return 1
	}))
}

// hostValue wraps h for Lua: vars is a free scratch table, state the
// strict table of the fields the pipelines' contracts declare.
type hostValue struct {
	h     *Host
	vars  *lua.LTable
	state *lua.LTable
}

func (s *State) hostUserData() *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = &hostValue{h: s.Host, vars: s.L.NewTable(), state: s.strictState()}
	s.L.SetMetatable(ud, s.L.GetTypeMetatable(hostType))
	return ud
}

// hostValue returns the Lua side of the state's host.
func (s *State) hostValue() *hostValue {
	if s.hostUD == nil {
		s.hostUD = s.hostUserData()
	}
	return s.hostUD.Value.(*hostValue)
}

// strictState is h.state: reading or writing a field no contract declares
// is an error (a typo must not read as nil).
func (s *State) strictState() *lua.LTable {
	L := s.L
	t := L.NewTable()
	mt := L.NewTable()
	check := func(L *lua.LState) {
		k := L.CheckString(2)
		if !s.Plan.State[k] {
			L.RaiseError("h.state has no field %q%s (declared by the pipelines' contracts: %s; use h.vars for your own values)",
				k, text.DidYouMean(k, s.Plan.StateNames()), strings.Join(s.Plan.StateNames(), ", "))
		}
	}
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		check(L)
		L.Push(lua.LNil)
		return 1
	}))
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		check(L)
		L.RawSet(L.CheckTable(1), L.Get(2), L.Get(3))
		return 0
	}))
	L.SetMetatable(t, mt)
	return t
}

// CheckHost returns the *Host passed as argument n (the `h` of a hook).
func CheckHost(L *lua.LState, n int) *Host {
	ud := L.CheckUserData(n)
	hv, ok := ud.Value.(*hostValue)
	if !ok {
		L.ArgError(n, "expected a host (the h argument of a step)")
	}
	return hv.h
}

func checkHost(L *lua.LState) *Host { return CheckHost(L, 1) }

// hostGetters are h's fields (HostMembers documents them).
var hostGetters = map[string]func(hv *hostValue) lua.LValue{
	"host":             func(hv *hostValue) lua.LValue { return lua.LString(hv.h.Name) },
	"stage":            func(hv *hostValue) lua.LValue { return lua.LString(hv.h.Stage) },
	"app":              func(hv *hostValue) lua.LValue { return lua.LString(hv.h.App) },
	"app_path":         func(hv *hostValue) lua.LValue { return lua.LString(hv.h.AppPath) },
	"release":          func(hv *hostValue) lua.LValue { return lua.LString(hv.h.Release) },
	"release_path":     func(hv *hostValue) lua.LValue { return lua.LString(hv.h.ReleasePath()) },
	"previous_release": func(hv *hostValue) lua.LValue { return lua.LString(hv.h.PreviousRelease) },
	"shared_path":      func(hv *hostValue) lua.LValue { return lua.LString(path.Join(hv.h.AppPath, "shared")) },
	"releases_path":    func(hv *hostValue) lua.LValue { return lua.LString(path.Join(hv.h.AppPath, "releases")) },
	"primary":          func(hv *hostValue) lua.LValue { return lua.LBool(hv.h.Primary) },
	"state":            func(hv *hostValue) lua.LValue { return hv.state },
	"vars":             func(hv *hostValue) lua.LValue { return hv.vars },
}

func hostIndex(L *lua.LState) int {
	hv := L.CheckUserData(1).Value.(*hostValue)
	key := L.CheckString(2)
	if m, ok := hostMethods[key]; ok {
		L.Push(L.NewFunction(m))
		return 1
	}
	if get, ok := hostGetters[key]; ok {
		L.Push(get(hv))
		return 1
	}
	L.RaiseError("host has no field %q%s (members: %s)", key, text.DidYouMean(key, hostMemberNames()), strings.Join(hostMemberNames(), ", "))
	return 0
}

func hostNewIndex(L *lua.LState) int {
	h := checkHost(L)
	key := L.CheckString(2)
	switch key {
	case "release":
		h.Release = L.CheckString(3)
	case "previous_release":
		h.PreviousRelease = L.CheckString(3)
		h.prevSet = true
	default:
		L.RaiseError("host field %q is read-only (writable: release, previous_release; use h.vars for your own values)", key)
	}
	return 0
}

// commandArg accepts a string (a shell command the user wrote) or a list of
// words, which are quoted with the one quoting helper.
func commandArg(L *lua.LState, n int) string {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case *lua.LTable:
		var words []string
		for i := 1; i <= v.Len(); i++ {
			words = append(words, lua.LVAsString(L.ToStringMeta(v.RawGetInt(i))))
		}
		return shell.Join(words...)
	}
	L.ArgError(n, "expected a command string or a list of words")
	return ""
}

func hostRun(L *lua.LState) int {
	h := checkHost(L)
	cmd := commandArg(L, 2)
	opts := L.OptTable(3, L.NewTable())
	checkOpts(L, opts, "check", "stdin", "cwd", "quiet")
	check := true
	if v := opts.RawGetString("check"); v != lua.LNil {
		check = lua.LVAsBool(v)
	}
	if cwd := opts.RawGetString("cwd"); cwd != lua.LNil {
		cmd = "cd " + shell.Quote(cwd.String()) + " && " + cmd
	}
	var o RunOpts
	if in := opts.RawGetString("stdin"); in != lua.LNil {
		o.Stdin = strings.NewReader(in.String())
	}
	o.Quiet = lua.LVAsBool(opts.RawGetString("quiet"))
	res, err := h.Exec(cmd, !check, o)
	if err != nil {
		return Raise(L, err)
	}
	return pushResult(L, res, check)
}

// pushResult returns stdout (check), or the whole result table.
func pushResult(L *lua.LState, res Result, check bool) int {
	if !check {
		L.Push(resultTable(L, res))
		return 1
	}
	L.Push(lua.LString(res.Stdout))
	return 1
}

func hostPut(L *lua.LState) int {
	h := checkHost(L)
	p := L.CheckString(2)
	content := L.CheckString(3)
	mode := os.FileMode(0o644)
	switch v := L.Get(4).(type) {
	case lua.LString:
		m, err := strconv.ParseUint(string(v), 8, 32)
		if err != nil {
			L.ArgError(4, "mode must be octal, e.g. \"0600\"")
		}
		mode = os.FileMode(m)
	case lua.LNumber:
		// 600 written as a number means octal 0600, as in chmod.
		m, err := strconv.ParseUint(strconv.Itoa(int(v)), 8, 32)
		if err != nil {
			L.ArgError(4, "mode must be octal digits, e.g. 600")
		}
		mode = os.FileMode(m)
	}
	if err := h.Put(p, []byte(content), mode); err != nil {
		return Raise(L, err)
	}
	return 0
}

func hostExists(L *lua.LState) int {
	h := checkHost(L)
	ok, err := h.Conn.Exists(h.Context(), L.CheckString(2))
	if err != nil {
		return Raise(L, err)
	}
	L.Push(lua.LBool(ok))
	return 1
}

func hostRead(L *lua.LState) int {
	h := checkHost(L)
	p := L.CheckString(2)
	// Read directly (SFTP) where the connection can: a command costs a
	// session and the user's shell startup, a read changes nothing to guard.
	b, err := remote.ReadFile(h.Context(), h.Conn, p)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("host %s: read %s: no such file", h.Name, p)
	}
	if err != nil {
		return Raise(L, err)
	}
	L.Push(lua.LString(b))
	return 1
}
