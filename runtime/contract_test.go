package runtime_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/runtime"
)

// A recipe in the shape of default.lua: a pipeline with a contract and an
// undo scoped to it.
const contractRecipe = `
task("ship", {
  { "ship:make", sets = { "sha" }, marks = "made" },
  { "ship:use", marks = "used" },
})
task("ship:make", function(h) h.state.sha = "abc" end)
task("ship:use", function(h) if h.vars.boom then error("boom") end end)
task("other", function(h) error("other failed") end)
on_failure("ship", function(h, err)
  print("undo made=" .. tostring(h.state.made) .. " used=" .. tostring(h.state.used) .. " sha=" .. tostring(h.state.sha))
end)
`

type journal struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (j *journal) Record(_ context.Context, st map[string]string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, st)
	return nil
}

func runContract(t *testing.T, user, task string) (*recorder, *journal, error) {
	t.Helper()
	rec := &recorder{}
	h := newHost(t)
	j := &journal{}
	h.SetJournal(j)
	s, err := runtime.NewState(newEnv(rec), h, compile(t, "recipe.lua", contractRecipe), compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.RunTask(context.Background(), task)
	return rec, j, err
}

// Marks are recorded before their step runs, also when the step is
// replaced, so the undo still sees them; the journal gets every mark.
func TestMarksSurviveAReplacedStep(t *testing.T) {
	rec, j, err := runContract(t, `
before("ship:use", function(h) h.vars.boom = true end)
task("ship:use", function(h) error("replaced step failed") end)`, "ship")
	if err == nil {
		t.Fatal("want the pipeline to fail")
	}
	undo := strings.Join(rec.texts(runtime.Info), "\n")
	if !strings.Contains(undo, "undo made=true used=true sha=abc") {
		t.Fatalf("undo did not see the marks: %q", undo)
	}
	if len(j.recs) != 2 || j.recs[0]["made"] != "true" || j.recs[1]["used"] != "true" || j.recs[1]["sha"] != "abc" {
		t.Fatalf("journal records = %v", j.recs)
	}
}

// A replacement that does not set what the contract says fails with an
// error naming the field, and the undo runs.
func TestReplacementMustSetTheContractFields(t *testing.T) {
	rec, _, err := runContract(t, `task("ship:make", function(h) end)`, "ship")
	var ce *runtime.ContractError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ContractError, got %v", err)
	}
	for _, want := range []string{"step ship:make (replaced at shipit.lua:1) did not set h.state.sha"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(strings.Join(rec.texts(runtime.Info), "\n"), "undo made=true used=nil sha=nil") {
		t.Fatalf("undo did not run: %q", rec.texts(runtime.Info))
	}
}

// on_failure("ship", fn) runs only when ship fails.
func TestScopedOnFailure(t *testing.T) {
	rec, _, err := runContract(t, ``, "other")
	if err == nil {
		t.Fatal("want other to fail")
	}
	if len(rec.texts(runtime.Info)) != 0 {
		t.Fatalf("the ship undo ran for another task: %q", rec.texts(runtime.Info))
	}
}

// h.state only has the declared fields: a typo is an error, not nil.
func TestStateIsStrict(t *testing.T) {
	_, _, err := runContract(t, `task("typo", function(h) return h.state.shaa end)`, "typo")
	if err == nil || !strings.Contains(err.Error(), `h.state has no field "shaa" (did you mean "sha"?)`) {
		t.Fatalf("err = %v", err)
	}
	_, _, err = runContract(t, `task("typo", function(h) h.state.mine = 1 end)`, "typo")
	if err == nil || !strings.Contains(err.Error(), "use h.vars for your own values") {
		t.Fatalf("err = %v", err)
	}
}

// on_failure naming an unknown task is a script error with a suggestion.
func TestScopedOnFailureNeedsATask(t *testing.T) {
	c, err := runtime.Compile(runtime.Script{Name: "shipit.lua", Source: []byte(`on_failure("shp", function() end)`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = runtime.NewState(newEnv(&recorder{}), nil, compile(t, "recipe.lua", contractRecipe), c)
	if err == nil || !strings.Contains(err.Error(), `on_failure("shp"): no task has that name (did you mean "ship"?)`) {
		t.Fatalf("err = %v", err)
	}
}
