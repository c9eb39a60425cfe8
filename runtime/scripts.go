package runtime

import (
	"bytes"
	"fmt"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Script is Lua source with the name used in error messages.
type Script struct {
	Name   string // e.g. "shipit.lua" or "recipes/default.lua"
	Source []byte
}

// Compiled is a script compiled once and shared read-only by every host's
// state (FunctionProto is immutable after compilation).
type Compiled struct {
	Name  string
	proto *lua.FunctionProto
}

var protoCache sync.Map // name+source -> *Compiled

// Compile parses and compiles s, caching the result for identical sources.
func Compile(s Script) (*Compiled, error) {
	key := s.Name + "\x00" + string(s.Source)
	if c, ok := protoCache.Load(key); ok {
		return c.(*Compiled), nil
	}
	chunk, err := parse.Parse(bytes.NewReader(s.Source), s.Name)
	if err != nil {
		return nil, mapError(err, "")
	}
	proto, err := lua.Compile(chunk, s.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	c := &Compiled{Name: s.Name, proto: proto}
	protoCache.Store(key, c)
	return c, nil
}
