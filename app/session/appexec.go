package session

import (
	"context"
	"fmt"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/shell"
)

// CommandArgs are the words after `--` of exec and app exec; none is an
// error whose hint is usage.
func CommandArgs(args []string, usage string) ([]string, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil, hint.New("no command given", usage)
	}
	return args, nil
}

// AppExec runs args in the web service of the current release on every
// selected host (app:exec of recipes/ops.lua): in the running container,
// or a fresh one with fresh; interactive needs exactly one host.
func (s *Session) AppExec(ctx context.Context, args []string, interactive, fresh bool) error {
	// One argument with spaces is a shell line, as in `shipit exec`;
	// otherwise the words are the command, each quoted.
	if len(args) == 1 && strings.ContainsAny(args[0], " \t\n") {
		args = []string{"sh", "-c", args[0]}
	}
	if n := len(s.Fleet.Hosts); interactive && n != 1 {
		return hint.New(fmt.Sprintf("--interactive opens a terminal on one host, and %d are selected", n),
			"pick one with --hosts HOST")
	}
	params := map[string]string{"cmd": shell.Join(args...)}
	if fresh {
		params["new"] = "1"
	}
	if interactive {
		params["interactive"] = "1"
	}
	s.Env.Params = params
	return orchestrator.Failed(s.Task(ctx, orchestrator.Task{Name: "app:exec", AtCurrent: true}))
}
