package runtime

import (
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// Task is a named step or task. A pipeline task has Steps instead of Fn.
type Task struct {
	Name     string
	Desc     string
	Fn       *lua.LFunction
	Steps    []string
	Source   string // file:line where it was (last) defined
	Replaced string // file:line of the definition it replaced, if any
}

// Hook is a before/after/on_failure function.
type Hook struct {
	Fn     *lua.LFunction
	Source string
}

// Plan is what the scripts declared: tasks, pipelines and hooks.
type Plan struct {
	Tasks     map[string]*Task
	Order     []string // definition order of task names
	Before    map[string][]*Hook
	After     map[string][]*Hook
	OnFailure []*Hook
	hookRefs  []hookRef
}

type hookRef struct {
	target, kind, source string
}

func newPlan() *Plan {
	return &Plan{Tasks: map[string]*Task{}, Before: map[string][]*Hook{}, After: map[string][]*Hook{}}
}

func (p *Plan) define(t *Task) {
	if old, ok := p.Tasks[t.Name]; ok {
		// Replacing keeps the hooks (they are stored by name) and the
		// pipeline position; only the body changes.
		t.Replaced = old.Source
		if t.Desc == "" {
			t.Desc = old.Desc
		}
	} else {
		p.Order = append(p.Order, t.Name)
	}
	p.Tasks[t.Name] = t
}

// validate reports hooks attached to names no script defined, and
// pipelines that name unknown steps.
func (p *Plan) validate() error {
	for _, r := range p.hookRefs {
		if _, ok := p.Tasks[r.target]; !ok {
			return &ScriptError{Msg: fmt.Sprintf("%s(%q): no step or task has that name%s", r.kind, r.target, p.suggest(r.target)), File: fileOf(r.source), Line: lineOf(r.source)}
		}
	}
	for _, name := range p.Order {
		t := p.Tasks[name]
		for _, s := range t.Steps {
			if _, ok := p.Tasks[s]; !ok {
				return &ScriptError{Msg: fmt.Sprintf("task %q lists unknown step %q%s", name, s, p.suggest(s)), File: fileOf(t.Source), Line: lineOf(t.Source)}
			}
		}
	}
	return nil
}

func (p *Plan) suggest(name string) string {
	best, bestD := "", 4
	for n := range p.Tasks {
		if d := levenshtein(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// Names returns every task name, pipelines and their steps first in run
// order, then the rest sorted.
func (p *Plan) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range p.Order {
		if t := p.Tasks[n]; len(t.Steps) > 0 {
			out = append(out, n)
			seen[n] = true
			for _, s := range t.Steps {
				if !seen[s] {
					out = append(out, s)
					seen[s] = true
				}
			}
		}
	}
	var rest []string
	for _, n := range p.Order {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
