package main

import (
	"fmt"
	"strings"

	"github.com/shipit-dev/shipit/internal/fleet"
	"github.com/shipit-dev/shipit/internal/shell"
)

// AppCmd groups the commands that act on the app's containers.
type AppCmd struct {
	Exec AppExecCmd `cmd:"" help:"Run a one-off command in the web service of the current release."`
}

// AppExecCmd runs the app:exec task of recipes/ops.lua.
type AppExecCmd struct {
	Stage       string   `short:"s" required:"" help:"Stage to run on."`
	Host        string   `help:"Only this host (as written in shipit.toml; default: every host)."`
	Interactive bool     `short:"t" aliases:"tty" help:"Interactive terminal (one host: needs --host or a single-host stage). -i is the global identity flag, so the short form is -t."`
	New         bool     `help:"Run in a fresh container of the web service (compose run --rm, the release's env) instead of the running one."`
	Command     []string `arg:"" passthrough:"" help:"Command and arguments, after --. A single argument with spaces is run with sh -c."`
}

func (c *AppExecCmd) Run(g *Globals) error {
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return opsHint{fmt.Errorf("no command given"), "shipit app exec -s STAGE -- CMD [ARGS...]"}
	}
	// One argument with spaces is a shell line, as in `shipit exec`;
	// otherwise the words are the command, each quoted.
	if len(args) == 1 && strings.ContainsAny(args[0], " \t\n") {
		args = []string{"sh", "-c", args[0]}
	}
	run, _, pool, err := g.stageRun(c.Stage, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := onlyHost(run, c.Host); err != nil {
		return err
	}
	if n := len(run.Env.Config.Stages[c.Stage].Hosts); c.Interactive && n != 1 {
		return opsHint{fmt.Errorf("--interactive opens a terminal on one host, and stage %s has %d", c.Stage, n),
			"pick one with --host HOST"}
	}
	params := map[string]string{"cmd": shell.Join(args...)}
	if c.New {
		params["new"] = "1"
	}
	if c.Interactive {
		params["interactive"] = "1"
	}
	run.Env.Params = params
	run.CurrentRelease = true
	return fleet.Failed(run.Task(g.ctx, "app:exec"))
}
