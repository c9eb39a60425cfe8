// Package fleet runs a task on every host of a stage: one goroutine, one
// pooled connection and one Lua state per host.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// Dialer gives a connection per host; *sshpool.Pool in production.
type Dialer interface {
	Get(ctx context.Context, t sshpool.Target) (*sshpool.Client, error)
}

// Run is one command across a stage.
type Run struct {
	Env      *runtime.Env
	Scripts  []*runtime.Compiled
	Pool     Dialer
	Parallel int    // 0 = all hosts at once
	Release  string // initial h.release (new name for deploy, target for rollback)
	// CurrentRelease makes h.release the release `current` points at (for
	// tasks run with `shipit run`).
	CurrentRelease bool
}

// HostResult is the outcome on one host.
type HostResult struct {
	Host    string
	Release string
	Steps   []runtime.StepTiming
	Elapsed time.Duration
	Err     error
}

// Targets resolves a stage's hosts to SSH targets.
func Targets(st *config.Stage) []sshpool.Target {
	var ts []sshpool.Target
	for _, h := range st.Hosts {
		t := sshpool.Target{Host: h.Address, User: st.User, Port: st.Port, Proxy: st.Proxy}
		if h.User != "" {
			t.User = h.User
		}
		if h.Port != 0 {
			t.Port = h.Port
		}
		// "host:port" in address wins over the stage's port.
		if host, port, err := net.SplitHostPort(h.Address); err == nil {
			if p, err := strconv.Atoi(port); err == nil {
				t.Host, t.Port = host, p
			}
		}
		ts = append(ts, t)
	}
	return ts
}

// Task runs the named task on every host of the stage and returns one
// result per host, in config order.
func (r *Run) Task(ctx context.Context, task string) []HostResult {
	cfg := r.Env.Config
	st := cfg.Stages[r.Env.Stage]
	targets := Targets(st)
	results := make([]HostResult, len(targets))
	par := r.Parallel
	if par <= 0 || par > len(targets) {
		par = len(targets)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func(i int, t sshpool.Target, name string) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = HostResult{Host: name, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			results[i] = r.onHost(ctx, t, name, task)
		}(i, t, st.Hosts[i].Address)
	}
	wg.Wait()
	return results
}

func (r *Run) onHost(ctx context.Context, t sshpool.Target, name, task string) HostResult {
	start := time.Now()
	res := HostResult{Host: name}
	conn, err := r.Pool.Get(ctx, t)
	if err != nil {
		res.Err = err
		r.Env.Sink.Emit(runtime.Event{Host: name, Kind: runtime.StepFailed, Step: "connect", Err: err})
		return res
	}
	h := r.newHost(conn, name)
	if r.CurrentRelease {
		h.Release = currentRelease(ctx, conn, h.AppPath)
	}
	s, err := runtime.NewState(r.Env, h, r.Scripts...)
	if err != nil {
		res.Err = err
		return res
	}
	defer s.Close()
	defer h.Finish()
	res.Steps, res.Err = s.RunTask(ctx, task)
	res.Release = h.Release
	res.Elapsed = time.Since(start)
	return res
}

func (r *Run) newHost(conn remote.Conn, name string) *runtime.Host {
	cfg := r.Env.Config
	return &runtime.Host{
		Conn:    conn,
		Name:    name,
		Stage:   r.Env.Stage,
		App:     cfg.App.Name,
		AppPath: path.Join(cfg.Deploy.DeployTo, cfg.App.Name),
		Release: r.Release,
	}
}

// Failed returns the first error among results, with how many hosts failed.
func Failed(results []HostResult) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("%d of %d hosts failed: %w", len(errs), len(results), errors.Join(errs...))
}

// currentRelease reads the name `current` points at; "" when none.
func currentRelease(ctx context.Context, conn remote.Conn, appPath string) string {
	var out strings.Builder
	code, err := conn.Run(ctx, "readlink "+shell.Quote(path.Join(appPath, "current")), nil, &out, io.Discard)
	if err != nil || code != 0 {
		return ""
	}
	return path.Base(strings.TrimSpace(out.String()))
}
