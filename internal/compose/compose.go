// Package compose knows the Compose implementations a host may have: the
// v2 plugin (`docker compose`) or the v1 Python tool (`docker-compose`).
package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
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

// Release says how a release's compose project is invoked.
type Release struct {
	Dir      string   // the release's directory
	Project  string   // its compose project
	Files    []string // its compose files (-f), none for the original shipit's
	Original bool     // deployed by the original shipit: compose ran in Dir
}

// DescFile records, in each release shipit starts, its project and files:
// the project on the first line, then one file a line, verbatim (a name
// may hold spaces or glob characters). Releases of older shipit versions
// hold one files line, space-separated.
const DescFile = ".shipit-compose"

// parseDesc reads a DescFile's lines (project first).
func parseDesc(lines []string) (project string, files []string) {
	files = lines[1:]
	if len(files) == 1 {
		return lines[0], strings.Fields(files[0]) // the older form
	}
	var out []string
	for _, f := range files {
		if f != "" {
			out = append(out, f)
		}
	}
	return lines[0], out
}

// Describe finds how the release in dir was started: from its DescFile;
// for releases of older shipit versions (their override carries shipit's
// labels) <app>-<release> with composeFile and the override; otherwise it
// is the original shipit's, whose project is the directory's name.
func Describe(ctx context.Context, c remote.Conn, dir, app, composeFile, override string) (Release, error) {
	name := path.Base(dir)
	r := Release{Dir: dir, Project: app + "-" + name, Files: []string{composeFile, override}}
	// Read directly (SFTP where the connection can): a command would cost
	// a session and the user's shell startup.
	desc, err := remote.ReadFile(ctx, c, path.Join(dir, DescFile))
	switch {
	case err == nil:
		if lines := strings.Split(strings.TrimRight(string(desc), "\n"), "\n"); len(lines) >= 2 && lines[0] != "" {
			r.Project, r.Files = parseDesc(lines)
		}
		return r, nil
	case !errors.Is(err, fs.ErrNotExist):
		return r, err
	}
	ovr, err := remote.ReadFile(ctx, c, path.Join(dir, override))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r, nil
	case err != nil:
		return r, err
	case !bytes.Contains(ovr, []byte("shipit.release")):
		r.Project, r.Files, r.Original = name, nil, true
	}
	return r, nil
}

// Run is `cd DIR && <compose> [-p P -f F...] args` for the release.
func (f Flavor) Run(r Release, args string) string {
	if r.Original {
		return "cd " + shell.Quote(r.Dir) + " && " + f.Command + " " + args
	}
	return f.In(r.Dir, r.Project, r.Files, args)
}
