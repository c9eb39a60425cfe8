package runtime

import (
	"errors"
	"sync"
	"testing"
)

func TestHostSlotsAreTypedAndDistinct(t *testing.T) {
	a, b := NewHostSlot[int]("a"), NewHostSlot[int]("a") // same name, still two slots
	h := &Host{Name: "h"}
	calls := 0
	get := func(s *HostSlot[int], key string, v int) int {
		got, err := s.Get(h, key, func() (int, error) { calls++; return v, nil })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if get(a, "", 1) != 1 || get(a, "", 2) != 1 || get(b, "", 3) != 3 || get(a, "k", 4) != 4 || calls != 3 {
		t.Fatalf("slots shared or recomputed (calls %d)", calls)
	}
	if get(a, "", 5) != 1 {
		t.Fatal("value lost")
	}
	// An error is not kept: the next Get computes again.
	e := NewHostSlot[string]("e")
	if _, err := e.Get(h, "", func() (string, error) { return "", errors.New("no") }); err == nil {
		t.Fatal("no error")
	}
	if v, err := e.Get(h, "", func() (string, error) { return "ok", nil }); err != nil || v != "ok" {
		t.Fatalf("after an error: %q %v", v, err)
	}
}

func TestRunSlotOncePerRun(t *testing.T) {
	s := NewRunSlot[*int]("x")
	env := &Env{}
	var wg sync.WaitGroup
	calls := 0
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _ := s.Get(env, "k", func() (*int, error) { mu.Lock(); calls++; mu.Unlock(); n := 7; return &n, nil })
			if *v != 7 {
				t.Error("wrong value")
			}
		}()
	}
	wg.Wait()
	if calls != 1 {
		t.Fatalf("computed %d times for 8 hosts, want once", calls)
	}
}

// Start computes in the background: a Get meanwhile waits for that value
// (never computes a second), while another slot's Get does not wait.
func TestHostSlotStartOverlapsOtherSlots(t *testing.T) {
	slow, other := NewHostSlot[string]("slow"), NewHostSlot[string]("other")
	h := &Host{Name: "h"}
	release, started := make(chan struct{}), make(chan struct{})
	slow.Start(h, "", func() (string, error) { close(started); <-release; return "first", nil })
	<-started
	if v, err := other.Get(h, "", func() (string, error) { return "free", nil }); err != nil || v != "free" {
		t.Fatalf("another slot while one computes: %q %v", v, err)
	}
	got := make(chan string)
	go func() {
		v, _ := slow.Get(h, "", func() (string, error) { return "second", nil })
		got <- v
	}()
	close(release)
	if v := <-got; v != "first" {
		t.Fatalf("Get during Start returned %q, want the started computation's %q", v, "first")
	}
}
