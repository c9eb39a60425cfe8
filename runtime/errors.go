package runtime

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// ScriptError is an error in Lua code, positioned at file:line[:col].
type ScriptError struct {
	File      string
	Line, Col int
	Msg       string
	Task      string // the step or task that was running, if any
	Cause     error  // the Go error a builtin raised, if any
}

func (e *ScriptError) Error() string {
	var b strings.Builder
	// A builtin's error raised from the embedded recipe carries its own
	// context; the recipe's line number would only be noise for users.
	if e.File != "" && !(e.Cause != nil && strings.HasPrefix(e.File, "recipes/")) {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Col > 0 {
				fmt.Fprintf(&b, ":%d", e.Col)
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Task != "" {
		fmt.Fprintf(&b, " (in %s)", e.Task)
	}
	return b.String()
}

func (e *ScriptError) Unwrap() error { return e.Cause }

// Hint suggests a fix for common script mistakes.
func (e *ScriptError) Hint() string {
	var h interface{ Hint() string }
	if errors.As(e.Cause, &h) {
		return h.Hint()
	}
	switch {
	case strings.Contains(e.Msg, "undefined global"):
		return "check the spelling; the globals are " + globalNames() + " (see shipit.d.lua)"
	case strings.Contains(e.Msg, "syntax error"):
		return "fix the Lua syntax at that position (shipit.lua is Lua 5.1)"
	}
	return ""
}

// goError carries a Go error through Lua's error machinery so the caller
// gets it back intact, together with the Lua position that raised it.
type goError struct {
	where string
	err   error
}

func (g *goError) String() string { return g.where + g.err.Error() }

// Raise aborts the running Lua code with err, keeping err for the Go caller.
// Builtins call it instead of L.RaiseError so remote failures keep their
// host/command/exit code details.
func Raise(L *lua.LState, err error) int {
	ud := L.NewUserData()
	ud.Value = &goError{where: whereLua(L), err: err}
	L.SetMetatable(ud, L.GetTypeMetatable(goErrorType))
	L.Error(ud, 0)
	return 0
}

const goErrorType = "shipit.error"

func registerGoErrorType(L *lua.LState) {
	mt := L.NewTypeMetatable(goErrorType)
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		if g, ok := L.CheckUserData(1).Value.(*goError); ok {
			L.Push(lua.LString(g.String()))
			return 1
		}
		L.Push(lua.LString("error"))
		return 1
	}))
}

// whereLua returns "file:line: " of the innermost Lua (non-Go) frame.
func whereLua(L *lua.LState) string {
	for lvl := 0; lvl < 50; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			return ""
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			continue
		}
		if dbg.CurrentLine > 0 && dbg.Source != "" && dbg.What != "G" {
			return fmt.Sprintf("%s:%d: ", dbg.Source, dbg.CurrentLine)
		}
	}
	return ""
}

var posRe = regexp.MustCompile(`^([^\s:]+\.lua):(\d+):\s*(.*)$`)

// mapError converts whatever gopher-lua returned into a *ScriptError.
func mapError(err error, task string) error {
	if err == nil {
		return nil
	}
	var se *ScriptError
	if errors.As(err, &se) {
		if se.Task == "" {
			se.Task = task
		}
		return se
	}
	var perr *parse.Error
	if errors.As(err, &perr) {
		return &ScriptError{File: perr.Pos.Source, Line: perr.Pos.Line, Col: perr.Pos.Column,
			Msg: fmt.Sprintf("syntax error near '%s'", perr.Token), Task: task}
	}
	var api *lua.ApiError
	if !errors.As(err, &api) {
		return err
	}
	if api.Cause != nil {
		return mapError(api.Cause, task)
	}
	if ud, ok := api.Object.(*lua.LUserData); ok {
		if g, ok := ud.Value.(*goError); ok {
			e := &ScriptError{Msg: g.err.Error(), Task: task, Cause: g.err}
			if m := posRe.FindStringSubmatch(g.where); m != nil {
				e.File, e.Line = m[1], atoi(m[2])
			}
			return e
		}
	}
	msg := lua.LVAsString(api.Object)
	if msg == "" && api.Object != nil {
		msg = api.Object.String()
	}
	msg = strings.TrimSpace(msg)
	if m := posRe.FindStringSubmatch(msg); m != nil {
		return &ScriptError{File: m[1], Line: atoi(m[2]), Msg: m[3], Task: task}
	}
	return &ScriptError{Msg: msg, Task: task}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
