package session

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/override"
	"github.com/shipit-dev/shipit/internal/text"
)

// deployChecks are what a deploy checks on this machine before it contacts
// a host; `deploy --plan` runs them too, so the plan warns about what the
// deploy would. It returns the commit of app.branch that will be deployed.
// With a shipit.lua that replaces deploy:push (a host that fetches from a
// remote, say), the local branch is not what is deployed: nothing is checked.
func (s *Session) DeployChecks(ctx context.Context) (string, error) {
	stderr, config := s.Proj.opts.Stderr, s.Proj.opts.Config
	if push := s.Proj.Plan().Tasks["deploy:push"]; push == nil || !strings.HasPrefix(push.Source, "recipes/") {
		return "", nil
	}
	branch := s.Env.Config.App.Branch
	dir := s.Proj.Dir
	sha, err := gitRun(ctx, dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		return "", &hint.Error{
			Msg: fmt.Sprintf("branch %q (app.branch in %s) has no commit in the local repository %s", branch, RelName(config), absDir(dir)),
			Fix: fmt.Sprintf("shipit deploys the committed HEAD of app.branch: commit on %s, or set app.branch to the branch to deploy", branch),
			Err: err}
	}
	warnBranch(ctx, stderr, dir, branch, sha)
	warnDirty(ctx, stderr, dir, filepath.Base(config), branch)
	// A shipit.lua that replaces deploy:override decides what it accepts.
	if ov := s.Proj.Plan().Tasks["deploy:override"]; ov != nil && strings.HasPrefix(ov.Source, "recipes/") {
		if err := checkCompose(ctx, dir, sha, s.Env.Config.Deploy.ComposeFile, s.Env.Config.Deploy.WebService); err != nil {
			return "", err
		}
	}
	return sha, nil
}

// checkCompose refuses, before any host, a compose file in the commit that
// deploy:override would refuse on every host (container_name, ...).
func checkCompose(ctx context.Context, dir, sha, file, web string) error {
	top, err := gitRun(ctx, dir, "rev-parse", "--show-prefix")
	if err != nil {
		return nil // not a git work tree: the push step says so
	}
	data, err := gitRun(ctx, dir, "show", sha+":"+path.Join(strings.TrimSpace(top), file))
	if err != nil {
		return hint.New(fmt.Sprintf("%s is not in commit %s", file, text.Short(sha)),
			"shipit.toml and the compose file must be in the git repository, and committed")
	}
	return override.CheckBase([]byte(data), web)
}

// warnBranch says when the checked-out branch is not the one deployed:
// shipit deploys app.branch whatever is checked out, which surprises
// whoever expects the branch in front of them to go out. A warning, not an
// error: deploying main from a feature branch is legitimate (a hotfix, CI
// on a detached checkout), and the commit that goes out is named.
func warnBranch(ctx context.Context, w io.Writer, dir, branch, sha string) {
	cur, err := gitRun(ctx, dir, "symbolic-ref", "-q", "--short", "HEAD")
	if err == nil {
		if cur != branch {
			fmt.Fprintf(w, "shipit: warning: the checked-out branch is %s, but shipit deploys %s (app.branch): %s's committed HEAD %s, not %s's\n",
				cur, branch, branch, text.Short(sha), cur)
			fmt.Fprintf(w, "shipit: hint: to deploy %s, set app.branch = %q in shipit.toml; to deploy %s, check it out to silence this warning\n", cur, cur, branch)
		}
		return
	}
	// Detached (CI checkouts): only a different commit is worth a word.
	if head, err := gitRun(ctx, dir, "rev-parse", "--verify", "-q", "HEAD"); err == nil && head != sha {
		fmt.Fprintf(w, "shipit: warning: HEAD is detached at %s, but shipit deploys %s (app.branch) at %s\n", text.Short(head), branch, text.Short(sha))
	}
}

// warnDirty says exactly what uncommitted edits do: files of the app are
// deployed from the commit (their edits are not), while shipit.toml,
// shipit.lua and the encrypted secrets are read from this directory (their
// edits are used).
func warnDirty(ctx context.Context, w io.Writer, dir, configName, branch string) {
	out, err := gitRun(ctx, dir, "status", "--porcelain=v1", "-z", "--untracked-files=no")
	if err != nil || out == "" {
		return
	}
	prefix, _ := gitRun(ctx, dir, "rev-parse", "--show-prefix")
	local := func(p string) bool {
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok {
			return false
		}
		return rel == configName || rel == "shipit.lua" || strings.HasPrefix(rel, ".shipit/secrets/")
	}
	var used, ignored []string
	entries := strings.Split(out, "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 4 {
			continue
		}
		p := e[3:]
		if e[0] == 'R' || e[0] == 'C' {
			i++ // the rename's source follows; the new name is what counts
		}
		rel := p
		if r, ok := strings.CutPrefix(p, prefix); ok {
			rel = r
		} else {
			rel = path.Join(strings.Repeat("../", strings.Count(prefix, "/")), p)
		}
		if local(p) {
			used = append(used, rel)
		} else {
			ignored = append(ignored, rel)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(w, "shipit: warning: uncommitted changes are not deployed (%s): shipit deploys the committed HEAD of %s\n", fileList(ignored), branch)
	}
	if len(used) > 0 {
		fmt.Fprintf(w, "shipit: warning: uncommitted changes ARE used (%s): shipit reads %s, shipit.lua and the secrets from this directory, not from the commit\n", fileList(used), configName)
	}
}

// fileList names up to 5 files, then counts the rest.
func fileList(files []string) string {
	if len(files) <= 5 {
		return strings.Join(files, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(files[:5], ", "), len(files)-5)
}

// gitRun runs git in dir and returns its trimmed stdout.
func gitRun(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
