package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/runtime"
)

// Rollout says how a task reaches the hosts: in batches, with a pause
// between them, atomically within a batch, canary hosts first.
type Rollout struct {
	Batch      func(hosts int) int // batch size for n hosts; nil: all at once
	Wait       time.Duration       // pause between batches
	Atomic     bool                // hosts of a batch pass the task's barriers together
	Canary     int                 // hosts deployed first, on their own
	CanaryWait time.Duration       // how long the canaries run before the rest (0: ask, or go on)
	// CanaryWatched: the Verifier watches the canaries for CanaryWait (it
	// measures them over the wait), so the gate does not wait again.
	CanaryWatched bool
	// Confirm, when set, asks whether to go on after the canaries (a
	// terminal prompt); it runs after CanaryWait.
	Confirm func(ctx context.Context) (bool, error)
	// Check, when set, decides go/no-go after the canaries (the shipit.lua
	// "canary" task on the canary hosts); an error is no-go.
	Check func(ctx context.Context, canaries []Host) error
	// Undo reverts the canary hosts after a no-go (a rollback).
	Undo func(ctx context.Context, canaries []Host) []Result
	// Failed, when set, tells hosts whose release went back after the task
	// ended (verify) why: their on_failure hooks run with it.
	Failed func(ctx context.Context, hosts []Host, err map[string]error)
	// Logf reports the rollout's progress (batches, waits).
	Logf func(format string, args ...any)
	// Verify, when set, watches each batch after it switched; a host whose
	// verdict is an error goes back (Undo), with its whole batch when the
	// rollout is atomic, and the rollout stops.
	Verify Verifier
}

// Verifier checks hosts after a deploy ([deploy.verify]).
type Verifier interface {
	// Before runs before the batch deploys: what the verdict compares with.
	Before(ctx context.Context, batch []Host)
	// After watches the batch once it switched and returns each host's
	// verdict: nil to keep the release, or why it must go back.
	After(ctx context.Context, batch []Host) map[string]Verdict
}

// Verdict is a Verifier's judgement of one host.
type Verdict struct {
	Fail  error  // non-nil: the release goes back
	Note  string // what is recorded either way ("passed: ...", a warning)
	Blind bool   // nothing could be measured
}

// ErrNotRun is the error of a host a stopped rollout never reached.
var ErrNotRun = errors.New("not deployed: the rollout stopped before this host")

// Batches splits hosts (primary first) into the rollout's batches.
func (r Rollout) Batches(hosts []Host) [][]Host {
	ordered := make([]Host, 0, len(hosts))
	for _, h := range hosts {
		if h.Primary {
			ordered = append([]Host{h}, ordered...)
		} else {
			ordered = append(ordered, h)
		}
	}
	var out [][]Host
	if r.Canary > 0 && r.Canary < len(ordered) {
		out = append(out, ordered[:r.Canary])
		ordered = ordered[r.Canary:]
	}
	size := len(ordered)
	if r.Batch != nil {
		size = max(1, r.Batch(len(hosts)))
	}
	for len(ordered) > 0 {
		n := min(size, len(ordered))
		out = append(out, ordered[:n])
		ordered = ordered[n:]
	}
	return out
}

// RunRollout runs t on every host batch by batch. A failed batch stops the
// rollout: earlier batches keep the new release, later ones are untouched
// (their results carry ErrNotRun).
func (f *Fleet) RunRollout(ctx context.Context, t Task, r Rollout) []Result {
	logf := r.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	batches := r.Batches(f.Hosts)
	once := &onceRuns{done: map[string]error{}}
	results := map[string]Result{}
	stopped := false
	for i, batch := range batches {
		if stopped || ctx.Err() != nil {
			for _, h := range batch {
				err := ErrNotRun
				if ctx.Err() != nil && !stopped {
					err = ctx.Err()
				}
				results[h.Name] = Result{Host: h.Name, Err: err}
			}
			continue
		}
		if len(batches) > 1 {
			logf("batch %d/%d: %s", i+1, len(batches), names(batch))
		}
		if r.Verify != nil {
			r.Verify.Before(ctx, batch)
		}
		rs := f.runBatch(ctx, t, batch, r.Atomic, once)
		for _, res := range rs {
			results[res.Host] = res
		}
		if Failed(rs) != nil {
			stopped = true
			continue
		}
		canary := i == 0 && r.Canary > 0 && len(batches) > 1
		if canary && r.CanaryWatched && r.CanaryWait > 0 {
			logf("canary: %s running the new release; waiting %s", names(batch), r.CanaryWait)
		}
		if r.Verify != nil && r.verify(ctx, batch, results, logf) {
			stopped = true
			continue
		}
		if i == 0 && r.Canary > 0 && len(batches) > 1 {
			if err := r.canaryGate(ctx, batch, logf); err != nil {
				logf("canary no-go: %v", err)
				stopped = true
				for _, h := range batch {
					res := results[h.Name]
					res.Err = fmt.Errorf("canary no-go: %w", err)
					results[h.Name] = res
				}
				if r.Undo != nil {
					for _, u := range r.Undo(context.WithoutCancel(ctx), batch) {
						if u.Err != nil {
							logf("rolling back canary %s failed: %v", u.Host, u.Err)
						} else {
							logf("canary %s rolled back to %s", u.Host, u.Release)
							res := results[u.Host]
							res.Release = u.Release
							results[u.Host] = res
						}
					}
				}
				continue
			}
		}
		if i < len(batches)-1 && r.Wait > 0 {
			logf("waiting %s before batch %d", r.Wait, i+2)
			select {
			case <-ctx.Done():
			case <-time.After(r.Wait):
			}
		}
	}
	out := make([]Result, len(f.Hosts))
	for i, h := range f.Hosts {
		out[i] = results[h.Name]
		out[i].Host = h.Name
	}
	return out
}

// verify runs the Verifier on a batch that switched, rolls back what
// failed (the whole batch when atomic) and reports whether it did.
func (r Rollout) verify(ctx context.Context, batch []Host, results map[string]Result, logf func(string, ...any)) bool {
	verdicts := r.Verify.After(ctx, batch)
	var failed []Host
	var why []string
	for _, h := range batch {
		v := verdicts[h.Name]
		res := results[h.Name]
		res.Verify = v.Note
		if v.Fail != nil {
			res.Verify = "rolled back: verify: " + v.Fail.Error()
			res.Err = fmt.Errorf("verify: %w (rolled back)", v.Fail)
			failed = append(failed, h)
			why = append(why, h.Name+": "+v.Fail.Error())
		}
		results[h.Name] = res
	}
	if len(failed) == 0 {
		return false
	}
	undo := failed
	if r.Atomic && len(failed) < len(batch) {
		undo = batch
		for _, h := range batch {
			if res := results[h.Name]; res.Err == nil {
				res.Err = fmt.Errorf("rolled back with its batch (--atomic): verify failed on %s", names(failed))
				res.Verify = "rolled back with its batch"
				results[h.Name] = res
			}
		}
	}
	logf("verify failed (%s): rolling back %s; the rollout stops", strings.Join(why, "; "), names(undo))
	if r.Failed != nil {
		errs := map[string]error{}
		for _, h := range undo {
			errs[h.Name] = results[h.Name].Err
		}
		r.Failed(context.WithoutCancel(ctx), undo, errs)
	}
	if r.Undo == nil {
		return true
	}
	for _, u := range r.Undo(context.WithoutCancel(ctx), undo) {
		res := results[u.Host]
		if u.Err != nil {
			logf("rolling back %s failed: %v", u.Host, u.Err)
			res.Err = fmt.Errorf("%w; and the rollback failed: %v", res.Err, u.Err)
		} else {
			logf("%s rolled back to %s", u.Host, u.Release)
			res.Release = u.Release
		}
		results[u.Host] = res
	}
	return true
}

func (r Rollout) canaryGate(ctx context.Context, canaries []Host, logf func(string, ...any)) error {
	if r.CanaryWait > 0 && !r.CanaryWatched {
		logf("canary: %s running the new release; waiting %s", names(canaries), r.CanaryWait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.CanaryWait):
		}
	}
	if r.Check != nil {
		if err := r.Check(ctx, canaries); err != nil {
			return err
		}
	}
	if r.Confirm != nil {
		ok, err := r.Confirm(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not confirmed")
		}
	}
	return nil
}

// runBatch runs t on batch at once, with a coordinator for its barriers
// and once hooks.
func (f *Fleet) runBatch(ctx context.Context, t Task, batch []Host, atomic bool, once *onceRuns) []Result {
	c := &coordinator{atomic: atomic, once: once, members: map[string]bool{}, arrived: map[string]map[string]bool{},
		cond: sync.NewCond(&sync.Mutex{}), failed: map[string]error{}, ended: map[string]bool{}, results: map[string]*onceResult{}}
	// The primary runs the once hooks: the stage's, else the batch's first
	// (Batches puts the stage's primary first, in the first batch).
	c.primary = batch[0].Name
	for _, h := range batch {
		c.members[h.Name] = true
		if h.Primary {
			c.primary = h.Name
		}
	}
	sub := &Fleet{Hosts: batch, Dialer: f.Dialer, Parallel: f.Parallel, Sink: f.Sink}
	tt := t
	tt.coordinator = c
	return sub.Each(ctx, func(ctx context.Context, h Host, conn remote.Conn) Result {
		r := tt.onHost(ctx, h, conn)
		if r.Err != nil {
			c.fail(h.Name, r.Err)
		} else {
			c.leave(h.Name)
		}
		return r
	})
}

func names(hs []Host) string {
	s := ""
	for i, h := range hs {
		if i > 0 {
			s += ", "
		}
		s += h.Name
	}
	return s
}

// onceRuns remembers once hooks that ran in an earlier batch.
type onceRuns struct {
	mu   sync.Mutex
	done map[string]error
}

// coordinator implements runtime.Coordinator for one batch.
type coordinator struct {
	atomic  bool
	once    *onceRuns
	primary string
	members map[string]bool

	cond    *sync.Cond
	arrived map[string]map[string]bool // point -> hosts there
	failed  map[string]error           // hosts that failed (or ended) before a point
	ended   map[string]bool
	results map[string]*onceResult
}

type onceResult struct {
	done bool
	err  error
}

var _ runtime.Coordinator = (*coordinator)(nil)

func (c *coordinator) fail(host string, err error) {
	c.cond.L.Lock()
	c.failed[host] = err
	c.cond.L.Unlock()
	c.cond.Broadcast()
}

func (c *coordinator) leave(host string) {
	c.cond.L.Lock()
	c.ended[host] = true
	c.cond.L.Unlock()
	c.cond.Broadcast()
}

// wait blocks until pred holds (under the lock) or ctx is done.
func (c *coordinator) wait(ctx context.Context, pred func() bool) error {
	stop := context.AfterFunc(ctx, func() { c.cond.Broadcast() })
	defer stop()
	for !pred() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.cond.Wait()
	}
	return nil
}

// Barrier holds host at point until every member arrived; a member that
// failed breaks it for all.
func (c *coordinator) Barrier(ctx context.Context, host, point string) error {
	if !c.atomic {
		return nil
	}
	c.cond.L.Lock()
	defer c.cond.L.Unlock()
	if c.arrived[point] == nil {
		c.arrived[point] = map[string]bool{}
	}
	c.arrived[point][host] = true
	c.cond.Broadcast()
	var broke string
	err := c.wait(ctx, func() bool {
		for h, e := range c.failed {
			if e != nil {
				broke = h
				return true
			}
		}
		return len(c.arrived[point]) == len(c.members)
	})
	if err != nil {
		return err
	}
	if broke != "" {
		return fmt.Errorf("atomic rollout: host %s failed before %s, so no host of the batch goes on", broke, point)
	}
	return nil
}

// Once runs the primary's fn while the others wait for its result.
func (c *coordinator) Once(ctx context.Context, host, key string, fn func() error) error {
	c.once.mu.Lock()
	if err, ok := c.once.done[key]; ok {
		c.once.mu.Unlock()
		return err // ran in an earlier batch
	}
	c.once.mu.Unlock()
	c.cond.L.Lock()
	res := c.results[key]
	if res == nil {
		res = &onceResult{}
		c.results[key] = res
	}
	if host == c.primary {
		c.cond.L.Unlock()
		err := fn()
		c.once.mu.Lock()
		c.once.done[key] = err
		c.once.mu.Unlock()
		c.cond.L.Lock()
		res.done, res.err = true, err
		c.cond.L.Unlock()
		c.cond.Broadcast()
		return err
	}
	defer c.cond.L.Unlock()
	err := c.wait(ctx, func() bool {
		if res.done {
			return true
		}
		_, gone := c.failed[c.primary]
		return gone || c.ended[c.primary]
	})
	if err != nil {
		return err
	}
	if !res.done {
		return fmt.Errorf("the primary host %s ended before running the once hook %s", c.primary, key)
	}
	if res.err != nil {
		return fmt.Errorf("once hook on the primary host %s failed: %w", c.primary, res.err)
	}
	return nil
}
