package session

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/hostlock"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/text"
)

// LockStatus prints who holds each host's deploy lock, and what an
// interrupted run left.
func (s *Session) LockStatus(cmdCtx context.Context, w io.Writer) error {
	appPath := s.Env.Config.AppPath()
	var mu sync.Mutex
	lines := make(map[string]string)
	results := s.Fleet.Each(cmdCtx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
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
			fmt.Fprintf(w, "%s: error: %s\n", r.Host, text.FirstLine(r.Err.Error()))
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", r.Host, lines[r.Host])
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

// LockRelease lets each host's lock go: a free one is said to be free,
// a live holder is refused unless force, which ends it and waits for the
// host to settle its run.
func (s *Session) LockRelease(cmdCtx context.Context, w io.Writer, force bool) error {
	appPath := s.Env.Config.AppPath()
	var mu sync.Mutex
	var refused []string
	start := time.Now()
	var released []orchestrator.Result
	results := s.Fleet.Each(cmdCtx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
		st, err := hostlock.ReadStatus(ctx, conn, appPath)
		if err != nil {
			return orchestrator.Result{Err: err}
		}
		if !st.Held && st.Stale && force {
			k, err := hostlock.Kill(ctx, conn, appPath)
			if err != nil {
				return orchestrator.Result{Err: err}
			}
			switch {
			case k.Stale:
				fmt.Fprintf(w, "%s: free; removed a stale holder file (%s), nothing signalled\n", h.Name, st.Holder)
			case k.Signalled != 0:
				// A holder took the lock since the status: it was
				// verified and signalled like any live holder.
				fmt.Fprintf(w, "%s: a new holder took the lock meanwhile and was signalled (pid %d)\n", h.Name, k.Signalled)
			default:
				fmt.Fprintf(w, "%s: free, nothing to release\n", h.Name)
			}
			return orchestrator.Result{}
		}
		if !st.Held {
			fmt.Fprintf(w, "%s: free, nothing to release\n", h.Name)
			return orchestrator.Result{}
		}
		if !force {
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
				fmt.Fprintf(w, "%s: released (the host settled the run it held)\n", h.Name)
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
		s.Record(cmdCtx, "lock-release", start, released)
	}
	if len(refused) > 0 {
		return hint.New("the lock is held by a live shipit on "+strings.Join(refused, "; "),
			"wait for it (or use --lock-wait); --force ends it: the host settles that run first (undone, or completed "+
				"past its point of no return), and the shipit that held it fails")
	}
	return orchestrator.Failed(results)
}
