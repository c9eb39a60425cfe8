package stopgrace

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseReadsMasksAndWaitChannel(t *testing.T) {
	out := "SIGTERM SigBlk:\t0000000000000000 SigCgt:\t0000000000004000 wchan: do_epoll_wait\n" +
		"SIGQUIT SigBlk:\t0000000000000000 SigCgt:\t0000000000000000 wchan: do_sigtimedwait.isra.0\n" +
		"SIGTERM SigBlk:\t0000000000000000 SigCgt:\t0000000000000000 wchan: do_select\n" +
		"SIGTERM SigBlk:\t0000000000000000 SigCgt:\t0000000000000000 wchan: 0\n" +
		"SIGTERM unknown\n"
	ps := parse(out)
	if len(ps) != 5 {
		t.Fatalf("parsed %d processes, want 5: %+v", len(ps), ps)
	}
	want := []bool{true, true, false, true, true} // handler, sigtimedwait (tini), none, wchan hidden, unknown
	for i, p := range ps {
		if p.Reacts() != want[i] {
			t.Errorf("process %d (%+v): Reacts() = %v, want %v", i, p, p.Reacts(), want[i])
		}
	}
}

func TestReactsLooksAtTheStopSignal(t *testing.T) {
	quitOnly := Process{Signal: "SIGQUIT", Caught: 1 << (3 - 1), Known: true}
	if !quitOnly.Reacts() {
		t.Error("a process that handles SIGQUIT, its stop signal, must react")
	}
	quitOnly.Signal = "TERM"
	if quitOnly.Reacts() {
		t.Error("a process that handles only SIGQUIT must not react to SIGTERM")
	}
	if !(Process{Signal: "SIGRTMIN+3", Known: true}).Reacts() {
		t.Error("an unknown signal name must count as reacting")
	}
}

func TestLongestIsTheSmallestBucketHoldingEveryRequest(t *testing.T) {
	inf := math.Inf(1)
	bs := []Bucket{{0.1, 5}, {0.3, 9}, {1.2, 10}, {5, 10}, {inf, 10}}
	if d, ok := Longest(bs); !ok || d != 1200*time.Millisecond {
		t.Errorf("Longest = %s, %v; want 1.2s, true", d, ok)
	}
	if _, ok := Longest([]Bucket{{0.1, 5}, {5, 9}, {inf, 10}}); ok {
		t.Error("a request beyond the last finite bucket must leave the longest unknown")
	}
	if _, ok := Longest([]Bucket{{0.1, 5}}); ok {
		t.Error("buckets without +Inf must leave the longest unknown")
	}
}

func TestDecideShortensOnlyDrainedReleasesThatCannotReact(t *testing.T) {
	ignores := []Process{{Signal: "SIGTERM", Known: true}}
	reacts := []Process{{Signal: "SIGTERM", Caught: 1 << 14, Known: true}}
	full := 30 * time.Second
	cases := []struct {
		name     string
		ps       []Process
		drained  bool
		longest  time.Duration
		measured bool
		want     time.Duration
	}{
		{"ignores, drained, measured", ignores, true, 300 * time.Millisecond, true, time.Second},
		{"rounded up to whole seconds", ignores, true, 1200 * time.Millisecond, true, 2 * time.Second},
		{"reacts", reacts, true, 300 * time.Millisecond, true, full},
		{"one of two reacts", append(ignores, reacts...), true, 300 * time.Millisecond, true, full},
		{"not drained", ignores, false, 300 * time.Millisecond, true, full},
		{"not measured", ignores, true, 0, false, full},
		{"longest beyond stop_timeout", ignores, true, 40 * time.Second, true, full},
	}
	for _, c := range cases {
		d := Decide(c.ps, c.drained, full, c.longest, c.measured)
		if d.Timeout != c.want {
			t.Errorf("%s: timeout %s, want %s", c.name, d.Timeout, c.want)
		}
		if (d.Why != "") != (c.want != full) || (d.Why != "" && !strings.Contains(d.Why, "ignore")) {
			t.Errorf("%s: why %q", c.name, d.Why)
		}
	}
}
