package orchestrator

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeVerifier struct{ fail map[string]error }

func (f fakeVerifier) Before(context.Context, []Host) {}
func (f fakeVerifier) After(_ context.Context, batch []Host) map[string]Verdict {
	out := map[string]Verdict{}
	for _, h := range batch {
		if err := f.fail[h.Name]; err != nil {
			out[h.Name] = Verdict{Fail: err}
		} else {
			out[h.Name] = Verdict{Note: "passed: fine"}
		}
	}
	return out
}

// A failed verdict rolls back that host, or the whole batch when atomic;
// the deploy's failure hooks hear of it; passing hosts keep their verdict.
func TestVerifyRollsBackTheFailedHostOrTheAtomicBatch(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		var undone, told []string
		r := Rollout{Atomic: atomic,
			Verify: fakeVerifier{fail: map[string]error{"b": errors.New("5xx 30.0% > 1.0% over 10s (300 requests)")}},
			Undo: func(_ context.Context, hs []Host) []Result {
				var rs []Result
				for _, h := range hs {
					undone = append(undone, h.Name)
					rs = append(rs, Result{Host: h.Name, Release: "previous"})
				}
				return rs
			},
			Failed: func(_ context.Context, hs []Host, errs map[string]error) {
				for _, h := range hs {
					told = append(told, h.Name+": "+errs[h.Name].Error())
				}
			},
		}
		results := map[string]Result{"a": {Host: "a"}, "b": {Host: "b"}, "c": {Host: "c"}}
		if !r.verify(context.Background(), hosts("a", "b", "c"), results, func(string, ...any) {}) {
			t.Fatalf("atomic=%v: a failed verdict did not stop the rollout", atomic)
		}
		want := "b"
		if atomic {
			want = "a b c"
		}
		if got := strings.Join(undone, " "); got != want {
			t.Errorf("atomic=%v: rolled back %q, want %q", atomic, got, want)
		}
		if b := results["b"]; b.Err == nil || !strings.HasPrefix(b.Err.Error(), "verify: 5xx 30.0%") || b.Release != "previous" ||
			b.Verify != "rolled back: verify: 5xx 30.0% > 1.0% over 10s (300 requests)" {
			t.Errorf("atomic=%v: b = %+v", atomic, b)
		}
		if a := results["a"]; atomic && (a.Err == nil || a.Verify != "rolled back with its batch") {
			t.Errorf("atomic: a = %+v", a)
		} else if !atomic && (a.Err != nil || a.Verify != "passed: fine") {
			t.Errorf("not atomic: a = %+v", a)
		}
		if len(told) != len(undone) || !strings.Contains(strings.Join(told, "\n"), "b: verify: 5xx") {
			t.Errorf("atomic=%v: failure hooks told %q", atomic, told)
		}
	}
	// Every host passes: nothing is rolled back.
	r := Rollout{Verify: fakeVerifier{}, Undo: func(context.Context, []Host) []Result { t.Fatal("undo"); return nil }}
	if r.verify(context.Background(), hosts("a"), map[string]Result{}, func(string, ...any) {}) {
		t.Fatal("a passing batch stopped the rollout")
	}
}
