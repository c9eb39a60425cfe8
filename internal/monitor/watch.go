package monitor

import (
	"context"
	"sync"
	"time"
)

// Watcher keeps collecting every host, each in its own loop, so that a slow
// or dead host never holds up the others: its last result stays on screen
// (or its error does) while the rest refresh.
type Watcher struct {
	Spec      Spec
	Sources   []Source
	Interval  time.Duration // pause between two collections of a host
	Timeout   time.Duration // per host and collection
	FullEvery time.Duration // how often the slow disk probes run (du, docker system df)

	mu      sync.Mutex
	hosts   []Host
	busy    []time.Time // when the running collection started (zero: idle)
	changed chan struct{}
}

// Start launches one loop per host through each; they stop when ctx is
// done. Changed() receives a value (coalesced) after every collection.
func (w *Watcher) Start(ctx context.Context, each Fanout) {
	w.hosts = make([]Host, len(w.Sources))
	w.busy = make([]time.Time, len(w.Sources))
	w.changed = make(chan struct{}, 1)
	for i := range w.Sources {
		w.hosts[i] = Host{Host: w.Sources[i].Name}
	}
	go each(ctx, w.loop)
}

// Changed signals that some host has a new result.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// HostState is one host as the dashboard shows it.
type HostState struct {
	Host
	Collected bool          // at least one collection finished
	BusyFor   time.Duration // how long the running collection has taken (0: idle)
}

// State returns the latest result of every host, in config order.
func (w *Watcher) State(now time.Time) []HostState {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]HostState, len(w.hosts))
	for i, h := range w.hosts {
		out[i] = HostState{Host: h, Collected: !h.CollectedAt.IsZero()}
		if !w.busy[i].IsZero() {
			out[i].BusyFor = now.Sub(w.busy[i])
		}
	}
	return out
}

func (w *Watcher) loop(ctx context.Context, i int) {
	var lastFull time.Time
	for {
		start := time.Now()
		full := lastFull.IsZero() || start.Sub(lastFull) >= w.FullEvery
		w.mu.Lock()
		w.busy[i] = start
		prev := w.hosts[i]
		w.mu.Unlock()

		h := CollectHost(ctx, w.Spec, w.Sources[i], w.Timeout, full)
		if ctx.Err() != nil {
			return
		}
		if full && h.Reachable {
			lastFull = start
		} else if !full {
			keepSlowDisk(&h, prev)
		}
		w.mu.Lock()
		w.hosts[i] = h
		w.busy[i] = time.Time{}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Interval):
		}
	}
}

// keepSlowDisk carries the last slow measurements over a quick refresh.
func keepSlowDisk(h *Host, prev Host) {
	h.Disk.DeployTo.UsedBytes = prev.Disk.DeployTo.UsedBytes
	d, p := &h.Disk.Docker, prev.Disk.Docker
	d.UsedBytes, d.ImagesBytes, d.ContainersBytes, d.VolumesBytes, d.BuildCacheBytes =
		p.UsedBytes, p.ImagesBytes, p.ContainersBytes, p.VolumesBytes, p.BuildCacheBytes
}
