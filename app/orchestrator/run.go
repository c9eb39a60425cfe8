package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// Dialer hands out one connection per host (the pool shares it between
// everything that runs on that host).
type Dialer interface {
	Dial(ctx context.Context, t sshpool.Target) (remote.Conn, error)
}

// The pool's connections are the hosts' remote.Conn.
var _ remote.Conn = (*sshpool.Client)(nil)

// SSH adapts a connection pool to a Dialer.
func SSH(p *sshpool.Pool) Dialer { return sshDialer{p} }

type sshDialer struct{ p *sshpool.Pool }

func (d sshDialer) Dial(ctx context.Context, t sshpool.Target) (remote.Conn, error) {
	c, err := d.p.Get(ctx, t)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Result is the outcome of a command on one host.
type Result struct {
	Host    string
	Release string // the release the host ran (deploy, rollback, tasks)
	// PreviousRelease and GitSHA: what the run replaced and deployed
	// (deploy, rollback), for the audit log.
	PreviousRelease, GitSHA string
	// Current is the release `current` names once the run is over (see
	// ReadCurrent): what the host runs, whatever happened.
	Current string
	Steps   []runtime.StepTiming // per step, for the summary
	Report  []runtime.ReportItem // what the task reported (doctor checks, setup items)
	Elapsed time.Duration
	Err     error
	// Verify is the verdict of the check after the switch ([deploy.verify]),
	// when it ran: for the audit log.
	Verify string
}

// Fleet is a set of selected hosts and how to reach them.
type Fleet struct {
	Hosts    []Host
	Dialer   Dialer
	Parallel int          // at most this many hosts at once; 0: all
	Sink     runtime.Sink // where connection failures are reported (may be nil)
}

// Dial connects to h.
func (f *Fleet) Dial(ctx context.Context, h Host) (remote.Conn, error) {
	return f.Dialer.Dial(ctx, h.Target)
}

// EachHost runs fn for every host, at most Parallel at once, and returns
// the results in host order. A host still waiting for its turn when ctx is
// cancelled gets ctx's error.
func (f *Fleet) EachHost(ctx context.Context, fn func(ctx context.Context, h Host) Result) []Result {
	results := make([]Result, len(f.Hosts))
	par := f.Parallel
	if par <= 0 || par > len(f.Hosts) {
		par = len(f.Hosts)
	}
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	for i, h := range f.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Host: h.Name, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			r := fn(ctx, h)
			r.Host = h.Name
			if r.Elapsed == 0 {
				r.Elapsed = time.Since(start)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	return results
}

// Each dials every host and runs fn with its connection; a host that
// cannot be reached is reported to Sink and gets the dial error.
func (f *Fleet) Each(ctx context.Context, fn func(ctx context.Context, h Host, c remote.Conn) Result) []Result {
	return f.EachHost(ctx, func(ctx context.Context, h Host) Result {
		c, err := f.Dial(ctx, h)
		if err != nil {
			if f.Sink != nil {
				f.Sink.Emit(runtime.Event{Host: h.Name, Kind: runtime.StepFailed, Step: "connect", Err: err})
			}
			return Result{Err: &ConnectError{Err: err}}
		}
		return fn(ctx, h, c)
	})
}

// ConnectError is a host that could not be reached: nothing ran there, so
// there is nothing to record in its audit log nor to ask it afterwards.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }
func (e *ConnectError) Hint() string  { return ConnectHint(e.Err) }

// Unreachable reports whether err is (or holds) a failed connection.
func Unreachable(err error) bool {
	var ce *ConnectError
	return errors.As(err, &ce)
}

// ConnectHint is the fix for a failed SSH connection: the connection's own
// hint (host keys say which), else one for a refused login or for a host
// that does not answer.
func ConnectHint(err error) string {
	if h := hint.Of(err); h != "" {
		return h
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return "add your public key to ~/.ssh/authorized_keys of the stage's user on the host, or pass -i KEY / load it in ssh-agent"
	}
	return "check the host address and port in shipit.toml (and ~/.ssh/config), that sshd runs and that no firewall blocks you"
}

// Task is a Lua task to run on every host.
type Task struct {
	Name    string
	Env     *runtime.Env
	Scripts []*runtime.Compiled
	Release string            // initial h.release (new name for deploy, target for rollback)
	Params  map[string]string // the task's `params` (nil: Env.Params)
	// AtCurrent starts h.release at the release `current` points at (tasks
	// run with `shipit run`, logs, app exec).
	AtCurrent bool
	// FailedAfter, when set, runs only the on_failure hooks of the task for
	// this error, found after the task ended (FailedStep names where).
	FailedAfter error
	FailedStep  string

	coordinator runtime.Coordinator // set per batch by RunRollout
}

func (t Task) onHost(ctx context.Context, host Host, c remote.Conn) Result {
	cfg := t.Env.Config
	h := &runtime.Host{
		Conn:        c,
		Name:        host.Name,
		Stage:       t.Env.Stage,
		App:         cfg.App.Name,
		AppPath:     path.Join(cfg.Deploy.DeployTo, cfg.App.Name),
		Release:     t.Release,
		Primary:     host.Primary,
		Params:      t.Params,
		Coordinator: t.coordinator,
	}
	if t.AtCurrent {
		h.Release = currentRelease(ctx, c, h.AppPath)
	}
	s, err := runtime.NewState(t.Env, h, t.Scripts...)
	if err != nil {
		return Result{Err: err}
	}
	defer s.Close()
	defer h.Finish()
	var r Result
	if t.FailedAfter != nil {
		s.RunFailureHooks(ctx, t.Name, t.FailedStep, t.FailedAfter)
		return r
	}
	r.Steps, r.Err = s.RunTask(ctx, t.Name)
	r.Release, r.PreviousRelease = h.Release, h.PreviousRelease
	r.GitSHA = s.StateSnapshot()["git_sha"]
	r.Report = h.Report()
	return r
}

// Failed returns nil when every host succeeded, else the error of the one
// that failed, or one naming how many did.
func Failed(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%d of %d hosts failed: %w", len(errs), len(results), errors.Join(errs...))
}

// HostsError names the hosts where a command failed; Errs keeps the
// causes so their hints reach the user.
type HostsError struct {
	Failed []string
	Errs   []error
}

func (e *HostsError) Unwrap() []error { return e.Errs }
func (e *HostsError) Error() string {
	return fmt.Sprintf("failed on %d host(s): %s", len(e.Failed), strings.Join(e.Failed, ", "))
}

// FailedOn is nil when every host succeeded, else a HostsError naming the
// hosts that failed.
func FailedOn(results []Result) error {
	e := &HostsError{}
	for _, r := range results {
		if r.Err != nil {
			e.Failed = append(e.Failed, r.Host)
			e.Errs = append(e.Errs, r.Err)
		}
	}
	if len(e.Failed) == 0 {
		return nil
	}
	return e
}

// ReadCurrent fills each result's Current with the release the host's
// `current` names now ("?" when the host cannot be asked).
// A host that could not be reached is not asked again (its Current stays
// "": the summary says nothing it does not know).
func (f *Fleet) ReadCurrent(ctx context.Context, appPath string, results []Result) {
	skip := map[string]bool{}
	for _, r := range results {
		if Unreachable(r.Err) {
			skip[r.Host] = true
		}
	}
	sub := *f
	sub.Hosts = nil
	for _, h := range f.Hosts {
		if !skip[h.Name] {
			sub.Hosts = append(sub.Hosts, h)
		}
	}
	cur := sub.Each(ctx, func(ctx context.Context, h Host, c remote.Conn) Result {
		return Result{Current: currentRelease(ctx, c, appPath)}
	})
	byHost := map[string]string{}
	for _, r := range cur {
		byHost[r.Host] = r.Current
		if r.Err != nil {
			byHost[r.Host] = "?"
		}
	}
	for i := range results {
		if !skip[results[i].Host] {
			results[i].Current = byHost[results[i].Host]
		}
	}
}

// RunTask runs t on every host, each with its own Lua state; once hooks
// run on the primary only.
func (f *Fleet) RunTask(ctx context.Context, t Task) []Result {
	return f.runBatch(ctx, t, f.Hosts, false, &onceRuns{done: map[string]error{}})
}

// currentRelease reads the name `current` points at; "" when none.
func currentRelease(ctx context.Context, c remote.Conn, appPath string) string {
	var out strings.Builder
	code, err := c.Run(ctx, "readlink "+shell.Quote(path.Join(appPath, "current")), nil, &out, io.Discard)
	if err != nil || code != 0 {
		return ""
	}
	return path.Base(strings.TrimSpace(out.String()))
}
