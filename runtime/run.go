package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
		return nil, s.Plan.NoTask(name)
	}
	if s.Host == nil {
		return nil, errors.New("runtime: RunTask needs a host")
	}
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	s.Host.cacheMu.Lock()
	s.Host.abort = abort
	s.Host.cacheMu.Unlock()
	s.Host.ctx = ctx
	s.L.SetContext(ctx)
	var timings []StepTiming
	err := s.runNode(t, 0, 0, nil, &timings)
	if err == nil {
		return timings, nil
	}
	var se *StepError
	if !errors.As(err, &se) {
		se = &StepError{Host: s.Host.Name, Step: name, Err: err}
	}
	s.Host.cacheMu.Lock()
	s.Host.failed = true
	s.Host.cacheMu.Unlock()
	s.runFailureHooks(ctx, name, se)
	return timings, se
}

// runNode runs a task with its hooks; c is its contract in the pipeline
// that runs it (nil outside one).
func (s *State) runNode(t *Task, idx, total int, c *StepContract, timings *[]StepTiming) error {
	h := s.Host
	prevStep := h.setStep(t.Name)
	defer h.setStep(prevStep)
	start := time.Now()
	calls0, nanos0 := h.traceMark()
	h.Emit(Event{Kind: StepStart, Index: idx, Total: total})
	var err error
	if c != nil && c.Barrier && h.Coordinator != nil {
		err = h.Coordinator.Barrier(h.Context(), h.Name, t.Name)
	}
	if err == nil {
		err = s.runHooks(s.Plan.Before[t.Name], t.Name)
	}
	// The mark comes after the before hooks: it says what the step's body
	// may change, and a hook that fails (a once-per-stage migration before
	// the switch, say) means the body never ran.
	if err == nil && c != nil && c.Marks != "" {
		err = s.mark(c.Marks)
	}
	if err == nil {
		if len(t.Steps) > 0 {
			for i, name := range t.Steps {
				var sc *StepContract
				if x, ok := t.Contract[name]; ok {
					sc = &x
				}
				if err = s.runNode(s.Plan.Tasks[name], i+1, len(t.Steps), sc, timings); err != nil {
					break
				}
			}
		} else {
			err = s.call(t.Fn, t.Name)
		}
	}
	if err == nil && c != nil {
		err = s.checkSets(t, c)
	}
	if err == nil {
		err = s.runHooks(s.Plan.After[t.Name], t.Name)
	}
	el := time.Since(start)
	if len(t.Steps) == 0 {
		h.traceStep(t.Name, el, calls0, nanos0)
	}
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
	for i, hk := range hooks {
		var err error
		if hk.Once && s.Host.Coordinator != nil {
			key := fmt.Sprintf("%s#%d@%s", task, i, hk.Source)
			err = s.Host.Coordinator.Once(s.Host.Context(), s.Host.Name, key, func() error { return s.call(hk.Fn, task) })
		} else {
			err = s.call(hk.Fn, task)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Coordinator synchronizes the hosts of one command run.
type Coordinator interface {
	// Barrier returns once every host of the batch reached point, or with
	// an error when one of them failed (then none goes on).
	Barrier(ctx context.Context, host, point string) error
	// Once runs fn on one host of the run (the primary) while the others
	// wait at key; every host gets its error. Each host passes its own fn:
	// only the primary's runs.
	Once(ctx context.Context, host, key string, fn func() error) error
}

func (s *State) call(fn *lua.LFunction, task string, args ...lua.LValue) error {
	s.hostValue()
	all := append([]lua.LValue{s.hostUD}, args...)
	err := s.L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, all...)
	if err != nil {
		if ctx := s.Host.Context(); ctx.Err() != nil {
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				return &ScriptError{Msg: cause.Error(), Task: task, Cause: cause}
			}
			return &ScriptError{Msg: "interrupted", Task: task, Cause: ctx.Err()}
		}
		return mapError(err, task)
	}
	return nil
}

// RunFailureHooks runs the on_failure hooks of task for a failure found
// after the task itself ended (a deploy that [deploy.verify] rolled back):
// the user's notifications report it like any failed deploy. err is shown
// as the failure of step.
func (s *State) RunFailureHooks(ctx context.Context, task, step string, err error) {
	if s.Host == nil {
		return
	}
	s.Host.ctx = ctx
	s.L.SetContext(ctx)
	s.runFailureHooks(ctx, task, &StepError{Host: s.Host.Name, Step: step, Err: err})
}

// runFailureHooks runs the on_failure hooks for a failure of task: the
// global ones and those scoped to it, on a fresh context so that an
// interrupted host is still put back in order.
func (s *State) runFailureHooks(ctx context.Context, task string, se *StepError) {
	var hooks []*Hook
	for _, hk := range s.Plan.OnFailure {
		if hk.Task == "" || hk.Task == task {
			hooks = append(hooks, hk)
		}
	}
	if len(hooks) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureTimeout)
	defer cancel()
	s.Host.ctx = fctx
	s.L.SetContext(fctx)
	prev := s.Host.setStep("on_failure")
	defer s.Host.setStep(prev)
	msg := se.Error()
	if s.Env.Redact != nil {
		msg = s.Env.Redact(msg) // hooks send it places: never a secret value
	}
	for _, hk := range hooks {
		if err := s.call(hk.Fn, "on_failure", lua.LString(msg)); err != nil {
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
	if err := s.runNode(t, 0, 0, nil, &timings); err != nil {
		return Raise(L, err)
	}
	return 0
}

// mark records that the step about to run may change what field names,
// in h.state and in the host's journal.
func (s *State) mark(field string) error {
	s.hostValue().state.RawSetString(field, lua.LTrue)
	if j := s.Host.journal; j != nil {
		if err := j.Record(s.Host.Context(), s.StateSnapshot()); err != nil {
			return fmt.Errorf("host %s: journal: %w", s.Host.Name, err)
		}
	}
	return nil
}

// checkSets fails a step that did not set what its contract promises.
func (s *State) checkSets(t *Task, c *StepContract) error {
	var missing []string
	for _, f := range c.Sets {
		switch f {
		case "release":
			if s.Host.Release == "" {
				missing = append(missing, "h.release")
			}
		case "previous_release":
			if !s.Host.prevSet {
				missing = append(missing, "h.previous_release")
			}
		default:
			if s.hostValue().state.RawGetString(f) == lua.LNil {
				missing = append(missing, "h.state."+f)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	where := ""
	if t.Replaced != "" {
		where = " (replaced at " + t.Source + ")"
	}
	return &ContractError{Step: t.Name, Where: where, Missing: missing}
}

// StateSnapshot is the host's deploy state as plain strings: h.state's
// scalar fields plus release and previous_release. It is what the journal
// records.
func (s *State) StateSnapshot() map[string]string {
	out := map[string]string{"release": s.Host.Release, "previous_release": s.Host.PreviousRelease}
	s.hostValue().state.ForEach(func(k, v lua.LValue) {
		switch v.Type() {
		case lua.LTString, lua.LTNumber, lua.LTBool:
			out[k.String()] = v.String()
		}
	})
	return out
}

// ContractError is a step that did not provide what the steps after it and
// the undo of its pipeline need: typically a step replaced in shipit.lua.
type ContractError struct {
	Step, Where string
	Missing     []string
}

func (e *ContractError) Error() string {
	return fmt.Sprintf("step %s%s did not set %s, which the steps after it and the undo of a failed run need",
		e.Step, e.Where, strings.Join(e.Missing, ", "))
}

func (e *ContractError) Hint() string {
	return "a step replaced with task(name, fn) must set the same fields as the built-in one: see the pipeline's contract in recipes/default.lua (`shipit tasks` shows it)"
}
