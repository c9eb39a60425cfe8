package orchestrator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func hosts(names ...string) []Host {
	var hs []Host
	for _, n := range names {
		hs = append(hs, Host{Name: n})
	}
	return hs
}

func TestBatchesPutThePrimaryAndTheCanariesFirst(t *testing.T) {
	hs := hosts("a", "b", "c", "d", "e")
	hs[2].Primary = true
	r := Rollout{Batch: func(int) int { return 2 }, Canary: 1}
	var got []string
	for _, b := range r.Batches(hs) {
		got = append(got, names(b))
	}
	if want := []string{"c", "a, b", "d, e"}; strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("batches %q, want %q", got, want)
	}
	if got := len(Rollout{}.Batches(hs)); got != 1 {
		t.Fatalf("no batch size: %d batches, want 1", got)
	}
}

func newCoord(atomic bool, members ...string) *coordinator {
	c := &coordinator{atomic: atomic, once: &onceRuns{done: map[string]error{}}, members: map[string]bool{},
		arrived: map[string]map[string]bool{}, cond: sync.NewCond(&sync.Mutex{}), failed: map[string]error{},
		ended: map[string]bool{}, results: map[string]*onceResult{}, primary: members[0]}
	for _, m := range members {
		c.members[m] = true
	}
	return c
}

// An atomic barrier lets nobody through until all arrived, and breaks for
// everyone when one host failed before it.
func TestAtomicBarrier(t *testing.T) {
	c := newCoord(true, "a", "b", "c")
	ctx := context.Background()
	var passed atomic.Int32
	var wg sync.WaitGroup
	for _, h := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Barrier(ctx, h, "deploy:stop_previous") == nil {
				passed.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if passed.Load() != 0 {
		t.Fatal("hosts passed the barrier before all arrived")
	}
	if err := c.Barrier(ctx, "c", "deploy:stop_previous"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if passed.Load() != 2 {
		t.Fatalf("%d of 2 waiting hosts passed", passed.Load())
	}

	c = newCoord(true, "a", "b", "c")
	errs := make(chan error, 2)
	for _, h := range []string{"a", "b"} {
		go func() { errs <- c.Barrier(ctx, h, "p") }()
	}
	time.Sleep(50 * time.Millisecond)
	c.fail("c", errors.New("health check failed"))
	for range 2 {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "host c failed before p") {
			t.Fatalf("barrier after a failure: %v", err)
		}
	}
	// Without --atomic there is no barrier.
	if err := newCoord(false, "a", "b").Barrier(ctx, "a", "p"); err != nil {
		t.Fatal(err)
	}
}

// A once hook runs on the primary only; the others wait for it and get its
// error; a later batch does not run it again.
func TestOnceRunsOnThePrimaryOnly(t *testing.T) {
	c := newCoord(false, "a", "b", "c")
	ctx := context.Background()
	var runs atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, h := range []string{"b", "c", "a"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Once(ctx, h, "migrate", func() error {
				runs.Add(1)
				time.Sleep(50 * time.Millisecond)
				return errors.New("migration failed")
			})
		}()
	}
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("once hook ran %d times", runs.Load())
	}
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "migration failed") {
			t.Fatalf("host %d: %v", i, err)
		}
	}
	// The next batch (same onceRuns) sees the result without running it.
	next := newCoord(false, "d")
	next.once = c.once
	if err := next.Once(ctx, "d", "migrate", func() error { runs.Add(1); return nil }); err == nil || runs.Load() != 1 {
		t.Fatalf("later batch: err %v, runs %d", err, runs.Load())
	}
	// The primary gone before its once hook: the others fail.
	c = newCoord(false, "a", "b")
	go func() { time.Sleep(50 * time.Millisecond); c.fail("a", errors.New("build failed")) }()
	if err := c.Once(ctx, "b", "warm", func() error { return nil }); err == nil || !strings.Contains(err.Error(), "primary host a ended") {
		t.Fatalf("primary gone: %v", err)
	}
}
