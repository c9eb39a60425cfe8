// Package plan tells what a deploy or a rollback would do on a host,
// without changing anything there: the release, the commits it brings,
// the environment keys it changes (never their values).
package plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"

	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/secrets"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/internal/traefik"
)

// Host is the plan of one host.
type Host struct {
	Current    string   // release `current` names ("" on a first deploy)
	CurrentSHA string   // its commit, from shipit.lock
	Target     string   // the release the command would make current
	TargetSHA  string   // its commit
	Commits    []string // "abc1234 subject", newest first, between the two commits
	CommitsErr string   // why they could not be listed
	EnvAdded   []string // keys the new env has and the current one lacks
	EnvChanged []string // keys whose value differs
	EnvRemoved []string // keys the current env has and the new one lacks
	Locked     string   // who holds the host's lock now, if anyone
	Proxy      bool     // the host's traefik container runs
	Routing    string   // how the release would be routed (RoutingLine)
}

// RoutingLine says how a release would be routed, and when the command
// would fail for lack of a Traefik (the routed wait's rule: a domain that
// no Traefik on the host routes fails the switch unless allowed).
func RoutingLine(domain string, allowUnrouted, proxy bool, command string) string {
	switch {
	case proxy && domain != "":
		return "Traefik routes " + domain
	case proxy:
		return "Traefik runs (no domain set)"
	case domain == "":
		return "no traefik container: nothing may route the release (a warning)"
	case allowUnrouted:
		return "no traefik container: switches anyway (allow_unrouted / --allow-unrouted), with a warning"
	}
	return "no traefik container: the " + command + " FAILS before switching (nothing routes " + domain + "); run `shipit setup`, or pass --allow-unrouted"
}

// Deploy plans a deploy of the commit newSHA with the stage's env sources
// (shipit.toml env and secrets; the host's `shipit config` values are read
// from the host).
func Deploy(ctx context.Context, c remote.Conn, appPath, projectDir, newSHA string, stageEnv, secrets map[string]string) (Host, error) {
	var h Host
	h.TargetSHA = newSHA
	if err := h.readCurrent(ctx, c, appPath); err != nil {
		return h, err
	}
	cfg, err := envsync.ReadConfig(ctx, c, appPath)
	if err != nil {
		return h, err
	}
	want := map[string]string{}
	for _, m := range envsync.Merge(stageEnv, cfg, secrets) {
		want[m.Key] = m.Value
	}
	have, err := envsync.ReadEnvFile(ctx, c, path.Join(appPath, envsync.EnvFile))
	if err != nil {
		return h, err
	}
	h.finish(ctx, c, projectDir, have, want)
	return h, nil
}

// Rollback plans a rollback to target ("" for the lock's previous release).
func Rollback(ctx context.Context, c remote.Conn, appPath, projectDir, target string) (Host, error) {
	var h Host
	l, err := h.readLock(ctx, c, appPath)
	if err != nil {
		return h, err
	}
	if target == "" && l != nil {
		target = l.PreviousRelease
	}
	h.Target = target
	if target == "" {
		return h, errors.New("shipit.lock names no previous release; pass --release NAME")
	}
	rel := path.Join(appPath, "releases", target)
	if ok, err := c.Exists(ctx, rel); err != nil {
		return h, err
	} else if !ok {
		// The rollback would refuse it: say so here.
		return h, fmt.Errorf("release %s does not exist on the host (`shipit releases` lists them)", target)
	}
	if sha, err := remote.ReadFile(ctx, c, path.Join(rel, ".shipit-revision")); err == nil {
		h.TargetSHA = strings.TrimSpace(string(sha))
	}
	have, err := envsync.ReadEnvFile(ctx, c, path.Join(appPath, envsync.EnvFile))
	if err != nil {
		return h, err
	}
	want, err := envsync.ReadEnvFile(ctx, c, path.Join(rel, envsync.Snapshot))
	if err != nil {
		return h, err
	}
	h.finish(ctx, c, projectDir, have, want)
	return h, nil
}

func (h *Host) readCurrent(ctx context.Context, c remote.Conn, appPath string) error {
	_, err := h.readLock(ctx, c, appPath)
	return err
}

func (h *Host) readLock(ctx context.Context, c remote.Conn, appPath string) (*lockfile.Lock, error) {
	if out, err := remote.Output(ctx, c, "readlink "+shell.Quote(path.Join(appPath, "current"))+" 2>/dev/null || true"); err == nil {
		h.Current = path.Base(strings.TrimSpace(out))
		if h.Current == "." {
			h.Current = ""
		}
	} else {
		return nil, err
	}
	b, err := remote.ReadFile(ctx, c, path.Join(appPath, "shipit.lock"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l, err := lockfile.Parse(b)
	if err != nil {
		return nil, nil // a broken lock: the deploy rewrites it
	}
	h.CurrentSHA = l.GitSHA
	if holder, err := remote.ReadFile(ctx, c, path.Join(appPath, ".shipit", "holder")); err == nil {
		h.Locked = strings.TrimSpace(string(holder))
	}
	return l, nil
}

// finish adds what both plans show: the env keys that change, the commits
// between, whether Traefik runs.
func (h *Host) finish(ctx context.Context, c remote.Conn, projectDir string, have, want map[string]string) {
	h.diffEnv(have, want)
	h.commits(ctx, projectDir)
	h.Proxy = traefik.Running(ctx, c)
}

func (h *Host) diffEnv(have, want map[string]string) {
	for k, v := range want {
		old, ok := have[k]
		switch {
		case !ok:
			h.EnvAdded = append(h.EnvAdded, k)
		case sha256.Sum256([]byte(old)) != sha256.Sum256([]byte(v)):
			h.EnvChanged = append(h.EnvChanged, k)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			h.EnvRemoved = append(h.EnvRemoved, k)
		}
	}
	sort.Strings(h.EnvAdded)
	sort.Strings(h.EnvChanged)
	sort.Strings(h.EnvRemoved)
}

// commits lists the commits between the current and the target commit
// from the local repository.
func (h *Host) commits(ctx context.Context, dir string) {
	switch {
	case h.TargetSHA == "" || h.CurrentSHA == h.TargetSHA:
		return
	case h.CurrentSHA == "":
		h.CommitsErr = "first deploy: no commit on the host yet"
		return
	}
	rng := h.CurrentSHA + ".." + h.TargetSHA
	if out, err := git(ctx, dir, "merge-base", "--is-ancestor", h.CurrentSHA, h.TargetSHA); err != nil {
		if _, err2 := git(ctx, dir, "cat-file", "-e", h.CurrentSHA+"^{commit}"); err2 != nil {
			h.CommitsErr = "the host's commit " + text.Short(h.CurrentSHA) + " is not in this repository"
			return
		}
		_ = out
		rng = h.TargetSHA + ".." + h.CurrentSHA // going back: the commits it takes away
		h.CommitsErr = "going back: these commits leave"
	}
	out, err := git(ctx, dir, "log", "--format=%h %s", "--max-count=50", rng)
	if err != nil {
		h.CommitsErr = err.Error()
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			h.Commits = append(h.Commits, l)
		}
	}
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = secrets.ScrubEnv(os.Environ())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errors.New(strings.TrimSpace("git " + strings.Join(args, " ") + ": " + errb.String()))
	}
	return out.String(), nil
}
