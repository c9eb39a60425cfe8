package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// StepError is a failed step on a host: what a user needs to act on it.
type StepError struct {
	Host string
	Step string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("host %s: step %s failed: %v", e.Host, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// StepTiming is one line of the per-host summary.
type StepTiming struct {
	Name    string
	Elapsed time.Duration
	Failed  bool
}

// failureTimeout bounds the clean-up after a failure or Ctrl-C, which runs
// on a fresh context so an interrupted host is still left consistent.
const failureTimeout = 3 * time.Minute

// RunTask runs a task or pipeline with its hooks on the state's host. On
// failure it runs the on_failure hooks and returns a *StepError.
func (s *State) RunTask(ctx context.Context, name string) ([]StepTiming, error) {
	t, ok := s.Plan.Tasks[name]
	if !ok {
		return nil, fmt.Errorf("no task named %q%s (see `shipit tasks`)", name, s.Plan.suggest(name))
	}
	if s.Host == nil {
		return nil, errors.New("runtime: RunTask needs a host")
	}
	s.Host.ctx = ctx
	s.L.SetContext(ctx)
	var timings []StepTiming
	err := s.runNode(t, 0, 0, &timings)
	if err == nil {
		return timings, nil
	}
	var se *StepError
	if !errors.As(err, &se) {
		se = &StepError{Host: s.Host.Name, Step: name, Err: err}
	}
	s.runFailureHooks(ctx, se)
	return timings, se
}

func (s *State) runNode(t *Task, idx, total int, timings *[]StepTiming) error {
	h := s.Host
	prevStep := h.step
	h.step = t.Name
	defer func() { h.step = prevStep }()
	start := time.Now()
	h.Emit(Event{Kind: StepStart, Index: idx, Total: total})
	err := s.runHooks(s.Plan.Before[t.Name], t.Name)
	if err == nil {
		if len(t.Steps) > 0 {
			for i, name := range t.Steps {
				if err = s.runNode(s.Plan.Tasks[name], i+1, len(t.Steps), timings); err != nil {
					break
				}
			}
		} else {
			err = s.call(t.Fn, t.Name)
		}
	}
	if err == nil {
		err = s.runHooks(s.Plan.After[t.Name], t.Name)
	}
	el := time.Since(start)
	if err != nil {
		var se *StepError
		if !errors.As(err, &se) {
			// The StepError names the step; the script error need not repeat it.
			var sce *ScriptError
			if errors.As(err, &sce) && sce.Task == t.Name {
				sce.Task = ""
			}
			err = &StepError{Host: h.Name, Step: t.Name, Err: err}
			h.Emit(Event{Kind: StepFailed, Index: idx, Total: total, Elapsed: el, Err: err})
		}
		if len(t.Steps) == 0 {
			*timings = append(*timings, StepTiming{Name: t.Name, Elapsed: el, Failed: true})
		}
		return err
	}
	if len(t.Steps) == 0 {
		*timings = append(*timings, StepTiming{Name: t.Name, Elapsed: el})
	}
	h.Emit(Event{Kind: StepDone, Index: idx, Total: total, Elapsed: el})
	return nil
}

func (s *State) runHooks(hooks []*Hook, task string) error {
	for _, hk := range hooks {
		if err := s.call(hk.Fn, task); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) call(fn *lua.LFunction, task string, args ...lua.LValue) error {
	if s.hostUD == nil {
		s.hostUD = s.hostUserData()
	}
	all := append([]lua.LValue{s.hostUD}, args...)
	err := s.L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, all...)
	if err != nil {
		if ctxErr := s.Host.Context().Err(); ctxErr != nil {
			return &ScriptError{Msg: "interrupted", Task: task, Cause: ctxErr}
		}
		return mapError(err, task)
	}
	return nil
}

func (s *State) runFailureHooks(ctx context.Context, se *StepError) {
	if len(s.Plan.OnFailure) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureTimeout)
	defer cancel()
	s.Host.ctx = fctx
	s.L.SetContext(fctx)
	prev := s.Host.step
	s.Host.step = "on_failure"
	defer func() { s.Host.step = prev }()
	for _, hk := range s.Plan.OnFailure {
		if err := s.call(hk.Fn, "on_failure", lua.LString(se.Error())); err != nil {
			s.Host.Emit(Event{Kind: Warn, Text: fmt.Sprintf("on_failure hook %s failed: %v", hk.Source, err)})
		}
	}
}

// invoke lets a recipe run another task (with its hooks) from Lua.
func (s *State) invoke(L *lua.LState) int {
	name := L.CheckString(1)
	t, ok := s.Plan.Tasks[name]
	if !ok {
		L.RaiseError("invoke: no task named %q%s", name, s.Plan.suggest(name))
	}
	var timings []StepTiming
	if err := s.runNode(t, 0, 0, &timings); err != nil {
		return Raise(L, err)
	}
	return 0
}
