// Package health waits for a compose service's containers to become
// healthy, and explains why when they don't.
package health

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
)

// Exec runs a command on the host and returns stdout, or an error for a
// non-zero exit.
type Exec func(ctx context.Context, cmd string) (string, error)

// Options say what to wait for.
type Options struct {
	Project  string        // compose project (one per release)
	Service  string        // usually the web service
	Docker   string        // docker command prefix, "docker"
	Interval time.Duration // poll interval
	Timeout  time.Duration // overall limit
	LogLines int           // container log lines to include on failure
	Check    string        // the health check, for the error ("GET http://127.0.0.1:8080/health")
}

// Error is a failed health check with what the user needs to debug it.
type Error struct {
	Service   string
	Container string
	Status    string // unhealthy, exited, timeout, missing
	Check     string // what was probed: "GET http://127.0.0.1:8080/health"
	Logs      string // last log lines of the container
	Probe     string // last health-check outputs, the last one last
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service %q did not become healthy (%s)", e.Service, e.Status)
	if e.Container != "" {
		fmt.Fprintf(&b, " [container %s]", e.Container)
	}
	if e.Check != "" {
		b.WriteString("\n  health check: " + e.Check)
	}
	if e.Probe != "" {
		b.WriteString("\n  last health-check results:\n" + indent(e.Probe))
	}
	if e.Logs != "" {
		b.WriteString("\n  last container log lines:\n" + indent(e.Logs))
	}
	return b.String()
}

// Hint is shown under the error.
func (e *Error) Hint() string {
	return "the new release was stopped and the previous one keeps serving; fix the app or [deploy.health_check] in shipit.toml and deploy again"
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// Wait polls until every container of the service is healthy. Containers
// without a health check count as healthy once running.
func Wait(ctx context.Context, run Exec, o Options) error {
	if o.Docker == "" {
		o.Docker = "docker"
	}
	if o.LogLines == 0 {
		o.LogLines = 30
	}
	deadline := time.Now().Add(o.Timeout)
	list := o.Docker + " ps -aq " + shell.Join("--filter", "label=com.docker.compose.project="+o.Project, "--filter", "label=com.docker.compose.service="+o.Service)
	var ids []string
	for {
		out, err := run(ctx, list)
		if err != nil {
			return err
		}
		ids = strings.Fields(out)
		if len(ids) > 0 {
			states, err := inspect(ctx, run, o, ids)
			if err != nil {
				return err
			}
			allOK := true
			for _, st := range states {
				switch {
				case st.state != "running" && st.state != "created" && st.state != "restarting":
					return explain(ctx, run, o, st.id, "container "+st.state)
				case st.health == "unhealthy":
					return explain(ctx, run, o, st.id, "unhealthy")
				case st.state != "running" || (st.health != "healthy" && st.health != "none"):
					allOK = false
				}
			}
			if allOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if len(ids) == 0 {
				return &Error{Service: o.Service, Status: "no container was started", Check: o.Check}
			}
			return explain(ctx, run, o, ids[0], fmt.Sprintf("still not healthy after %s", o.Timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Interval):
		}
	}
}

type cstate struct{ id, state, health string }

func inspect(ctx context.Context, run Exec, o Options, ids []string) ([]cstate, error) {
	args := append([]string{"inspect", "--format", "{{.Id}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"}, ids...)
	out, err := run(ctx, o.Docker+" "+shell.Join(args...))
	if err != nil {
		return nil, err
	}
	var res []cstate
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			res = append(res, cstate{id: f[0][:min(12, len(f[0]))], state: f[1], health: f[2]})
		}
	}
	return res, nil
}

func explain(ctx context.Context, run Exec, o Options, id, status string) error {
	e := &Error{Service: o.Service, Container: id, Status: status, Check: o.Check}
	if logs, err := run(ctx, fmt.Sprintf("%s logs --tail %d %s 2>&1", o.Docker, o.LogLines, shell.Quote(id))); err == nil {
		e.Logs = strings.TrimRight(logs, "\n")
	}
	probe, err := run(ctx, o.Docker+" "+shell.Join("inspect", "--format", `{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{"\n"}}{{end}}{{end}}`, id))
	if err == nil {
		var lines []string
		for _, l := range strings.Split(probe, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		e.Probe = text.Tail(strings.Join(lines, "\n"), 5)
	}
	return e
}
