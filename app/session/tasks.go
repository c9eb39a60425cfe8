package session

import (
	"fmt"
	"io"
	"strings"

	"github.com/shipit-dev/shipit/runtime"
)

// ShowTasks lists the steps and tasks of the recipes and shipit.lua with
// their hooks, in run order.
func (p *Project) ShowTasks(w io.Writer) error {
	s, err := runtime.NewState(p.Env(""), nil, p.Scripts...)
	if err != nil {
		return err
	}
	defer s.Close()
	plan := s.Plan
	for _, name := range plan.Names() {
		t := plan.Tasks[name]
		indent := ""
		if len(t.Steps) == 0 && isStepOfPipeline(plan, name) {
			indent = "  "
		}
		for _, hk := range plan.Before[name] {
			fmt.Fprintf(w, "%s  before  %s\n", indent, hk.Source)
		}
		line := fmt.Sprintf("%s%-24s %s", indent, name, t.Desc)
		if t.Replaced != "" {
			line += fmt.Sprintf("  [replaced at %s]", t.Source)
		} else if !strings.HasPrefix(t.Source, "recipes/") {
			line += fmt.Sprintf("  [%s]", t.Source)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		if c, ok := contractOf(plan, name); ok {
			var parts []string
			if len(c.Sets) > 0 {
				parts = append(parts, "sets "+strings.Join(c.Sets, ", "))
			}
			if c.Marks != "" {
				parts = append(parts, "marks "+c.Marks)
			}
			if len(parts) > 0 {
				fmt.Fprintf(w, "%s  contract: %s\n", indent, strings.Join(parts, "; "))
			}
		}
		for _, hk := range plan.After[name] {
			fmt.Fprintf(w, "%s  after   %s\n", indent, hk.Source)
		}
	}
	for _, hk := range plan.OnFailure {
		scope := ""
		if hk.Task != "" {
			scope = " (" + hk.Task + ")"
		}
		fmt.Fprintf(w, "on_failure%s %s\n", scope, hk.Source)
	}
	return nil
}

func isStepOfPipeline(p *runtime.Plan, name string) bool {
	for _, t := range p.Tasks {
		for _, s := range t.Steps {
			if s == name {
				return true
			}
		}
	}
	return false
}

// contractOf finds the contract a pipeline declares for step name.
func contractOf(p *runtime.Plan, name string) (runtime.StepContract, bool) {
	for _, t := range p.Tasks {
		if c, ok := t.Contract[name]; ok {
			return c, true
		}
	}
	return runtime.StepContract{}, false
}
