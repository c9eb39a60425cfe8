package main

// TasksCmd lists steps and tasks with their hooks, in run order.
type TasksCmd struct{}

func (c *TasksCmd) Run(g *Globals) error {
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	return p.ShowTasks(g.stdout)
}
