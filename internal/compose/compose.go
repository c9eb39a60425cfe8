// Package compose knows the Compose implementations a host may have: the
// v2 plugin (`docker compose`) or the v1 Python tool (`docker-compose`).
package compose

import (
	"context"
	"fmt"
	"strings"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Flavor is the Compose implementation on a host.
type Flavor struct {
	Command string // shell prefix: "docker compose" or "docker-compose"
	V1      bool
	Version string
}

// Name is "v1" or "v2".
func (f Flavor) Name() string {
	if f.V1 {
		return "v1"
	}
	return "v2"
}

// NoComposeError means the host has neither compose v2 nor v1.
type NoComposeError struct{ Host string }

func (e *NoComposeError) Error() string {
	return fmt.Sprintf("host %s: neither `docker compose` (v2 plugin) nor `docker-compose` (v1) works", e.Host)
}

func (e *NoComposeError) Hint() string {
	return "install Docker and Compose on the host (Debian: apt-get install docker.io docker-compose), or run `shipit setup --install-docker`"
}

// Detect finds the host's compose, preferring v2.
func Detect(ctx context.Context, c remote.Conn) (Flavor, error) {
	if out, err := remote.Output(ctx, c, "docker compose version --short"); err == nil {
		return Flavor{Command: "docker compose", Version: strings.TrimSpace(out)}, nil
	} else if ctx.Err() != nil {
		return Flavor{}, err
	}
	if out, err := remote.Output(ctx, c, "docker-compose version --short"); err == nil {
		return Flavor{Command: "docker-compose", V1: true, Version: strings.TrimSpace(out)}, nil
	} else if ctx.Err() != nil {
		return Flavor{}, err
	}
	return Flavor{}, &NoComposeError{Host: c.Name()}
}

// In is the shell command that runs compose ARGS for one project in dir,
// with the given files: `cd DIR && <compose> -p P -f F1 -f F2 ARGS`.
func (f Flavor) In(dir, project string, files []string, args string) string {
	words := []string{"-p", project}
	for _, file := range files {
		words = append(words, "-f", file)
	}
	return "cd " + shell.Quote(dir) + " && " + f.Command + " " + shell.Join(words...) + " " + args
}
