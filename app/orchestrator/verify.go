package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shipit-dev/shipit/internal/metrics"
)

// MetricsVerifier is the Verifier of [deploy.verify]: it reads Traefik's
// metrics of the app's service on each host before the deploy (the
// baseline: what the releases before it answered) and for Window after
// the switch, logs a line per host every Interval, and fails a host as
// soon as a gate fails (a pass needs the whole window).
type MetricsVerifier struct {
	Fleet          *Fleet
	Service        string // the Traefik service: <app>-<stage>
	Gate           metrics.Gate
	Window         time.Duration
	Interval       time.Duration
	RequireMetrics bool
	Logf           func(format string, args ...any)
	// Canary is the canary hosts' number (--canary): the first batch is
	// watched for CanaryWindow instead of Window, and compared with the
	// other hosts, still on the previous release, over the same time.
	Canary       int
	CanaryWindow time.Duration

	mu        sync.Mutex
	batches   int
	baselines map[string]metrics.Snapshot
	blind     map[string]error // hosts whose Traefik serves no metrics
}

// Before reads each host's counters before its deploy.
func (v *MetricsVerifier) Before(ctx context.Context, batch []Host) {
	v.mu.Lock()
	if v.baselines == nil {
		v.baselines, v.blind = map[string]metrics.Snapshot{}, map[string]error{}
	}
	v.mu.Unlock()
	v.each(ctx, batch, func(ctx context.Context, h Host) Verdict {
		s, err := v.scrape(ctx, h)
		v.mu.Lock()
		defer v.mu.Unlock()
		if err != nil {
			v.blind[h.Name] = err
		} else {
			v.baselines[h.Name] = s
		}
		return Verdict{}
	})
}

// After watches each host of the batch for the window.
func (v *MetricsVerifier) After(ctx context.Context, batch []Host) map[string]Verdict {
	v.mu.Lock()
	v.batches++
	first := v.batches == 1
	v.mu.Unlock()
	window := v.Window
	var peers []Host
	if first && v.Canary > 0 {
		window = v.CanaryWindow
		in := map[string]bool{}
		for _, h := range batch {
			in[h.Name] = true
		}
		for _, h := range v.Fleet.Hosts {
			if !in[h.Name] {
				peers = append(peers, h)
			}
		}
	}
	if window <= 0 {
		return nil
	}
	var p *peerWatch
	if len(peers) > 0 {
		p = v.watchPeers(ctx, peers, window)
	}
	return v.each(ctx, batch, func(ctx context.Context, h Host) Verdict {
		verdict := v.watch(ctx, h, window, p)
		if first && v.Canary > 0 && verdict.Blind {
			// Nothing to measure: the canaries still run the wait out
			// before the rest, as --canary-wait says.
			select {
			case <-ctx.Done():
			case <-time.After(window):
			}
		}
		return verdict
	})
}

// peerWatch is what the hosts still on the previous release answered
// while the canaries were watched.
type peerWatch struct {
	done chan struct{}
	w    metrics.Window
	ok   bool
}

// watchPeers sums the peers' windows over the same time as the canaries'.
func (v *MetricsVerifier) watchPeers(ctx context.Context, peers []Host, window time.Duration) *peerWatch {
	p := &peerWatch{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var mu sync.Mutex
		v.each(ctx, peers, func(ctx context.Context, h Host) Verdict {
			a, err := v.scrape(ctx, h)
			if err != nil {
				return Verdict{}
			}
			select {
			case <-ctx.Done():
				return Verdict{}
			case <-time.After(window):
			}
			b, err := v.scrape(ctx, h)
			if err != nil {
				return Verdict{}
			}
			mu.Lock()
			defer mu.Unlock()
			p.w, p.ok = sumWindows(p.w, metrics.Between(a, b, v.Service)), true
			return Verdict{}
		})
	}()
	return p
}

// sumWindows adds the peers' counts; their p95 is the worst peer's (a
// canary is judged against the slowest host still on the old release).
func sumWindows(a, b metrics.Window) metrics.Window {
	return metrics.Window{Requests: a.Requests + b.Requests, Errors: a.Errors + b.Errors, Span: max(a.Span, b.Span), P95: max(a.P95, b.P95)}
}

func (v *MetricsVerifier) each(ctx context.Context, batch []Host, fn func(ctx context.Context, h Host) Verdict) map[string]Verdict {
	out := map[string]Verdict{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := fn(ctx, h)
			mu.Lock()
			out[h.Name] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (v *MetricsVerifier) scrape(ctx context.Context, h Host) (metrics.Snapshot, error) {
	c, err := v.Fleet.Dial(ctx, h)
	if err != nil {
		return metrics.Snapshot{}, err
	}
	return metrics.Scrape(ctx, c)
}

func (v *MetricsVerifier) watch(ctx context.Context, h Host, window time.Duration, peers *peerWatch) Verdict {
	v.mu.Lock()
	base, ok := v.baselines[h.Name]
	blindErr := v.blind[h.Name]
	v.mu.Unlock()
	start, err := v.scrape(ctx, h)
	if !ok || err != nil {
		if err == nil {
			err = blindErr
		}
		if err == nil {
			err = errors.New("no baseline")
		}
		if v.RequireMetrics {
			return Verdict{Fail: fmt.Errorf("cannot measure: %v (require_metrics = true)", err)}
		}
		v.Logf("verify %s: cannot measure (%v): skipped, the release stays", h.Name, err)
		return Verdict{Note: "skipped: cannot measure: " + err.Error(), Blind: true}
	}
	baseline := metrics.Total(base, v.Service)
	v.Logf("verify %s: watching %s for %s (before: %s)", h.Name, v.Service, window, metrics.Summary(baseline))
	deadline := start.At.Add(window)
	for {
		wait := min(v.Interval, time.Until(deadline))
		if wait > 0 {
			select {
			case <-ctx.Done():
				return Verdict{Note: "interrupted"}
			case <-time.After(wait):
			}
		}
		now, err := v.scrape(ctx, h)
		if err != nil {
			if ctx.Err() != nil {
				return Verdict{Note: "interrupted"}
			}
			v.Logf("verify %s: reading Traefik's metrics: %v", h.Name, err)
			if time.Now().Before(deadline) {
				continue
			}
			return Verdict{Fail: fmt.Errorf("cannot measure at the end of the window: %v", err)}
		}
		w := metrics.Between(start, now, v.Service)
		final := !now.At.Before(deadline)
		v.Logf("verify %s: %s", h.Name, metrics.Line(w, baseline))
		verdict := v.Gate.Judge(w, baseline, final)
		if !verdict.Pass {
			return Verdict{Fail: errors.New(verdict.Reason)}
		}
		if final && peers != nil {
			<-peers.done
			if peers.ok {
				v.Logf("verify %s: the other hosts over the same time: %s", h.Name, metrics.Summary(peers.w))
				if pv := v.Gate.Compare(w, peers.w); !pv.Pass {
					return Verdict{Fail: errors.New(pv.Reason)}
				}
			}
		}
		if final {
			if verdict.Reason != "" {
				v.Logf("verify %s: warning: %s; the release stays", h.Name, verdict.Reason)
				return Verdict{Note: "warning: " + verdict.Reason}
			}
			note := "passed: " + metrics.Line(w, baseline) + " over " + w.Span.Round(time.Second).String()
			v.Logf("verify %s: %s", h.Name, note)
			return Verdict{Note: note}
		}
	}
}
