package runtime

import (
	"fmt"
	"sort"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/text"
	lua "github.com/yuin/gopher-lua"
)

// Task is a named step or task. A pipeline task has Steps instead of Fn.
type Task struct {
	Name     string
	Desc     string
	Fn       *lua.LFunction
	Steps    []string
	Contract map[string]StepContract // for a pipeline: what its steps promise
	Source   string                  // file:line where it was (last) defined
	Replaced string                  // file:line of the definition it replaced, if any
}

// StepContract is what a step of a pipeline hands on. Marks is recorded in
// h.state (and the host's journal, when one is open) after the step's
// before hooks and before its body,
// so the pipeline's on_failure undo knows what to reverse even when the
// step is replaced or interrupted; Sets are the fields the step must set,
// checked after it runs (h.state fields, or the host fields release and
// previous_release).
type StepContract struct {
	Sets  []string
	Marks string
	// Barrier: in a rollout with barriers (--atomic), every host of the
	// batch waits here until all of them got here, and none goes on when
	// one failed.
	Barrier bool
}

// Hook is a before/after/on_failure function.
type Hook struct {
	Fn     *lua.LFunction
	Source string
	Task   string // on_failure only: the task it is scoped to ("" = any)
	// Once: the hook runs on one host of the run (the stage's primary)
	// while the others wait at that point; all of them get its error.
	Once bool
}

// Plan is what the scripts declared: tasks, pipelines and hooks.
type Plan struct {
	Tasks     map[string]*Task
	Order     []string // definition order of task names
	Before    map[string][]*Hook
	After     map[string][]*Hook
	OnFailure []*Hook
	// State is every h.state field a contract declares (sets and marks).
	State    map[string]bool
	hookRefs []hookRef
}

type hookRef struct {
	target, kind, source string
}

func newPlan() *Plan {
	return &Plan{Tasks: map[string]*Task{}, Before: map[string][]*Hook{}, After: map[string][]*Hook{}, State: map[string]bool{}}
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
	for _, c := range t.Contract {
		for _, f := range c.Sets {
			if !hostFields[f] {
				p.State[f] = true
			}
		}
		if c.Marks != "" {
			p.State[c.Marks] = true
		}
	}
}

// hostFields are the host fields a step contract may name in sets.
var hostFields = map[string]bool{"release": true, "previous_release": true}

// StateNames lists the declared h.state fields, sorted.
func (p *Plan) StateNames() []string {
	names := make([]string, 0, len(p.State))
	for n := range p.State {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validate reports hooks attached to names no script defined, and
// pipelines that name unknown steps.
func (p *Plan) validate() error {
	for _, r := range p.hookRefs {
		if _, ok := p.Tasks[r.target]; !ok {
			return &ScriptError{Msg: fmt.Sprintf("%s(%q): no step or task has that name%s", r.kind, r.target, p.suggest(r.target)), File: fileOf(r.source), Line: lineOf(r.source)}
		}
	}
	for _, r := range p.OnFailure {
		if _, ok := p.Tasks[r.Task]; r.Task != "" && !ok {
			return &ScriptError{Msg: fmt.Sprintf("on_failure(%q): no task has that name%s", r.Task, p.suggest(r.Task)), File: fileOf(r.Source), Line: lineOf(r.Source)}
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

// NoTask is the error for a task name the scripts do not define, with the
// closest defined name; nil when name is defined.
func (p *Plan) NoTask(name string) error {
	if _, ok := p.Tasks[name]; ok {
		return nil
	}
	return &hint.Error{Msg: fmt.Sprintf("no task named %q%s", name, p.suggest(name)),
		Fix: "`shipit tasks` lists every task: the built-in ones and those of shipit.lua"}
}

func (p *Plan) suggest(name string) string {
	names := make([]string, 0, len(p.Tasks))
	for n := range p.Tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return text.DidYouMean(name, names)
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
