package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/hostlock"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/text"
)

// LockCmd groups the deploy lock commands.
type LockCmd struct {
	Status  LockStatusCmd  `cmd:"" help:"Show who holds each host's deploy lock, and any journal an interrupted run left."`
	Release LockReleaseCmd `cmd:"" help:"Let a host's deploy lock go (refused while its holder is alive, unless --force)."`
}

// LockStatusCmd shows the lock per host.
type LockStatusCmd struct {
	hostFlags
}

// LockReleaseCmd releases locks.
type LockReleaseCmd struct {
	hostFlags
	Force bool `help:"End a live holder: the host settles its run (undone, or completed past its point of no return) and the shipit that held it fails."`
}

func (c *LockStatusCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	appPath := s.Env.Config.AppPath()
	var mu sync.Mutex
	lines := make(map[string]string)
	results := s.Fleet.Each(g.ctx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
		st, err := hostlock.ReadStatus(ctx, conn, appPath)
		if err != nil {
			return orchestrator.Result{Err: err}
		}
		mu.Lock()
		lines[h.Name] = describeLock(st)
		mu.Unlock()
		return orchestrator.Result{}
	})
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(g.stdout, "%s: error: %s\n", r.Host, text.FirstLine(r.Err.Error()))
			continue
		}
		fmt.Fprintf(g.stdout, "%s: %s\n", r.Host, lines[r.Host])
	}
	return orchestrator.Failed(results)
}

func describeLock(st hostlock.Status) string {
	var b strings.Builder
	if st.Held {
		fmt.Fprintf(&b, "held: %s", st.Holder)
		if st.Heartbeat > 0 {
			fmt.Fprintf(&b, " (last heartbeat %s ago)", st.Heartbeat)
		}
	} else {
		b.WriteString("free")
		if st.Stale {
			fmt.Fprintf(&b, " (a stale holder file names %s, whose holder is gone without the lock: `shipit lock release --force` removes it)", st.Holder)
		}
	}
	if st.Journal != "" && !st.Held {
		fmt.Fprintf(&b, "; an interrupted %s left its journal: the next deploy, rollback, setup or `shipit recover` settles it", st.Journal)
	}
	for _, c := range st.Corrupt {
		fmt.Fprintf(&b, "; a corrupt journal was kept aside as %s (not settled: check the releases, current and shipit.lock, then delete it)", c)
	}
	return b.String()
}

func (c *LockReleaseCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	appPath := s.Env.Config.AppPath()
	var mu sync.Mutex
	var refused []string
	start := time.Now()
	var released []orchestrator.Result
	results := s.Fleet.Each(g.ctx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
		st, err := hostlock.ReadStatus(ctx, conn, appPath)
		if err != nil {
			return orchestrator.Result{Err: err}
		}
		if !st.Held && st.Stale && c.Force {
			k, err := hostlock.Kill(ctx, conn, appPath)
			if err != nil {
				return orchestrator.Result{Err: err}
			}
			switch {
			case k.Stale:
				fmt.Fprintf(g.stdout, "%s: free; removed a stale holder file (%s), nothing signalled\n", h.Name, st.Holder)
			case k.Signalled != 0:
				// A holder took the lock since the status: it was
				// verified and signalled like any live holder.
				fmt.Fprintf(g.stdout, "%s: a new holder took the lock meanwhile and was signalled (pid %d)\n", h.Name, k.Signalled)
			default:
				fmt.Fprintf(g.stdout, "%s: free, nothing to release\n", h.Name)
			}
			return orchestrator.Result{}
		}
		if !st.Held {
			fmt.Fprintf(g.stdout, "%s: free, nothing to release\n", h.Name)
			return orchestrator.Result{}
		}
		if !c.Force {
			mu.Lock()
			refused = append(refused, h.Name+" ("+st.Holder.String()+")")
			mu.Unlock()
			return orchestrator.Result{Err: fmt.Errorf("%s: held by a live holder: %s", h.Name, st.Holder)}
		}
		if _, err := hostlock.Kill(ctx, conn, appPath); err != nil {
			return orchestrator.Result{Err: err}
		}
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			st, err = hostlock.ReadStatus(ctx, conn, appPath)
			if err != nil {
				return orchestrator.Result{Err: err}
			}
			if !st.Held {
				fmt.Fprintf(g.stdout, "%s: released (the host settled the run it held)\n", h.Name)
				mu.Lock()
				released = append(released, orchestrator.Result{Host: h.Name, Elapsed: time.Since(start)})
				mu.Unlock()
				return orchestrator.Result{}
			}
			select {
			case <-ctx.Done():
				return orchestrator.Result{Err: ctx.Err()}
			case <-time.After(500 * time.Millisecond):
			}
		}
		return orchestrator.Result{Err: fmt.Errorf("%s: the holder did not end within 10 minutes", h.Name)}
	})
	if len(released) > 0 {
		s.Record(g.ctx, "lock-release", start, released)
	}
	if len(refused) > 0 {
		return hint.New("the lock is held by a live shipit on "+strings.Join(refused, "; "),
			"wait for it (or use --lock-wait); --force ends it: the host settles that run first (undone, or completed "+
				"past its point of no return), and the shipit that held it fails")
	}
	return orchestrator.Failed(results)
}

// RecoverCmd settles what interrupted runs left on the hosts.
type RecoverCmd struct {
	hostFlags
	LockWait time.Duration `help:"Wait up to this long for another shipit's lock (e.g. 10m)."`
}

func (c *RecoverCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Env.LockWait = c.LockWait
	start := time.Now()
	results := s.Task(g.ctx, orchestrator.Task{Name: "recover"})
	s.Record(g.ctx, "recover", start, results)
	return orchestrator.Failed(results)
}
