package main

import (
	"fmt"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/shell"
)

// AppCmd groups the commands that act on the app's containers.
type AppCmd struct {
	Exec AppExecCmd `cmd:"" help:"Run a one-off command in the web service of the current release."`
}

// AppExecCmd runs the app:exec task of recipes/ops.lua.
type AppExecCmd struct {
	hostFlags
	Interactive bool     `short:"t" aliases:"tty" help:"Interactive terminal (one host: select it with --hosts, or a single-host stage). -i is the global --ssh-key flag, so the short form is -t."`
	New         bool     `help:"Run in a fresh container of the web service (compose run --rm, the release's env) instead of the running one."`
	Command     []string `arg:"" passthrough:"" help:"Command and arguments, after --. A single argument with spaces is run with sh -c."`
}

func (c *AppExecCmd) Run(g *Globals) error {
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return hint.New("no command given", "shipit app exec -s STAGE -- CMD [ARGS...]")
	}
	// One argument with spaces is a shell line, as in `shipit exec`;
	// otherwise the words are the command, each quoted.
	if len(args) == 1 && strings.ContainsAny(args[0], " \t\n") {
		args = []string{"sh", "-c", args[0]}
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	if n := len(s.Fleet.Hosts); c.Interactive && n != 1 {
		return hint.New(fmt.Sprintf("--interactive opens a terminal on one host, and %d are selected", n),
			"pick one with --hosts HOST")
	}
	params := map[string]string{"cmd": shell.Join(args...)}
	if c.New {
		params["new"] = "1"
	}
	if c.Interactive {
		params["interactive"] = "1"
	}
	s.Env.Params = params
	return orchestrator.Failed(s.Task(g.ctx, orchestrator.Task{Name: "app:exec", AtCurrent: true}))
}
