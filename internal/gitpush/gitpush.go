// Package gitpush implements deploy step 2 ("push code") without an ssh
// binary: the local branch is packed into a git bundle, uploaded through
// remote.Conn.WriteFile and fetched into the host's bare repository. The
// bundle leaves out what the host's current commit already brings when this
// clone knows that commit; when the host already has the target commit
// (rollback), only the ref is moved.
package gitpush

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
)

// Options describes one push.
type Options struct {
	LocalRepo  string // working directory of the local git repository
	Branch     string // branch name, e.g. "main" (not "refs/heads/main")
	RemoteRepo string // bare repository path on the host
	Logf       func(format string, args ...any)
}

// Result reports what a push did.
type Result struct {
	SHA         string // commit now at refs/heads/<Branch> on the host
	Bytes       int64  // bundle bytes uploaded (0 when skipped)
	Incremental bool   // bundle left out what the host's commit already has (fast-forward or rewrite)
	Skipped     bool   // host already had SHA; nothing was sent
}

// CommandError is a command that ran but exited non-zero, locally or on a host.
type CommandError = remote.CommandError

// ErrGitMissing is wrapped by the error returned when the host has no git.
var ErrGitMissing = errors.New("git is not installed")

// Push makes refs/heads/<o.Branch> in o.RemoteRepo on c equal to the local
// branch, sending only what the host lacks when it can.
func Push(ctx context.Context, c remote.Conn, o Options) (Result, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	host := c.Name()
	if o.RemoteRepo == "" {
		return Result{}, fmt.Errorf("gitpush %s: remote repository path is empty", host)
	}
	if err := validateBranch(ctx, o.LocalRepo, o.Branch); err != nil {
		return Result{}, err
	}
	ref := "refs/heads/" + o.Branch

	localSHA, err := localRevParse(ctx, o.LocalRepo, ref)
	if err != nil {
		return Result{}, err
	}

	remoteSHA, hostHasCommit, err := prepareRemote(ctx, c, o.RemoteRepo, ref, localSHA)
	if err != nil {
		return Result{}, err
	}
	if remoteSHA == localSHA {
		logf("%s: %s already at %s, nothing to push", host, o.Branch, text.Short(localSHA))
		return Result{SHA: localSHA, Skipped: true}, nil
	}
	if hostHasCommit {
		// Rollback to an earlier deploy, or a commit another branch brought:
		// no bundle, just move the ref (compare-and-swap on its old value).
		logf("%s: %s: host already has %s, moving the branch", host, o.Branch, text.Short(localSHA))
		upd := shell.Join("git", "--git-dir="+o.RemoteRepo, "update-ref", ref, localSHA, remoteSHA)
		if err := finish(ctx, c, o.RemoteRepo, ref, localSHA, upd, upd); err != nil {
			return Result{}, err
		}
		return Result{SHA: localSHA, Incremental: true}, nil
	}

	// The bundle may omit everything reachable from the host's commit when
	// we know that commit: a fast-forward sends just the new commits, and a
	// rewritten history (amend, rebase) sends only what the rewrite changed.
	// A host commit unknown here (pushed from another clone, or gc'd) means a
	// full bundle.
	basis := ""
	if remoteSHA != "" && isHexSHA(remoteSHA) {
		code, _, _, err := runLocal(ctx, o.LocalRepo, "git", "cat-file", "-e", remoteSHA+"^{commit}")
		if err != nil {
			return Result{}, err
		}
		if code == 0 {
			basis = remoteSHA
		}
	}
	incremental := basis != ""

	tmp, err := os.MkdirTemp("", "shipit-push-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	bundle := filepath.Join(tmp, "push.bundle")
	args := []string{"bundle", "create", "-q", bundle}
	if incremental {
		args = append(args, ref, "^"+basis)
	} else {
		args = append(args, ref)
	}
	if code, _, stderr, err := runLocal(ctx, o.LocalRepo, "git", args...); err != nil {
		return Result{}, err
	} else if code != 0 {
		return Result{}, &CommandError{Host: "local", Cmd: "git " + strings.Join(args, " "), Code: code, Stderr: tail(stderr)}
	}
	f, err := os.Open(bundle)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	kind := "full"
	if incremental {
		kind = "incremental"
	}
	logf("%s: pushing %s %s (%s bundle, %d bytes)", host, o.Branch, text.Short(localSHA), kind, st.Size())

	remoteBundle := path.Join(o.RemoteRepo, "shipit-push-"+randomHex(8)+".bundle")
	if err := c.WriteFile(ctx, remoteBundle, f, st.Size(), 0o600); err != nil {
		cleanupRemote(ctx, c, remoteBundle)
		return Result{}, fmt.Errorf("%s: uploading bundle to %s: %w", host, remoteBundle, err)
	}

	// Fetch, always remove the bundle, then check the ref.
	fetch := shell.Join("git", "--git-dir="+o.RemoteRepo, "fetch", "-q", "--update-head-ok", remoteBundle, "+"+ref+":"+ref)
	script := fetch + "; rc=$?; rm -f " + shell.Quote(remoteBundle) + "; [ $rc -eq 0 ] || exit $rc"
	if err := finish(ctx, c, o.RemoteRepo, ref, localSHA, script, fetch); err != nil {
		cleanupRemote(ctx, c, remoteBundle)
		return Result{}, err
	}
	return Result{SHA: localSHA, Bytes: st.Size(), Incremental: incremental}, nil
}

// validateBranch rejects names git would not accept as a branch and names
// that git would expand (like @{-1}) instead of taking literally.
func validateBranch(ctx context.Context, dir, branch string) error {
	if branch == "" {
		return errors.New("gitpush: branch name is empty")
	}
	if strings.HasPrefix(branch, "-") || strings.HasPrefix(branch, "refs/") || strings.Contains(branch, "@{") {
		return fmt.Errorf("gitpush: invalid branch name %q", branch)
	}
	code, stdout, stderr, err := runLocal(ctx, dir, "git", "check-ref-format", "--branch", branch)
	if err != nil {
		return err
	}
	if code != 0 || strings.TrimSpace(stdout) != branch {
		msg := fmt.Sprintf("gitpush: invalid branch name %q", branch)
		if s := tail(stderr); s != "" {
			msg += ": " + s
		}
		return errors.New(msg)
	}
	return nil
}

func localRevParse(ctx context.Context, dir, ref string) (string, error) {
	code, stdout, stderr, err := runLocal(ctx, dir, "git", "rev-parse", "-q", "--verify", ref+"^{commit}")
	if err != nil {
		return "", err
	}
	if code != 0 {
		if s := tail(stderr); s != "" {
			return "", fmt.Errorf("gitpush: branch %q not found in local repository %s: %s", strings.TrimPrefix(ref, "refs/heads/"), dir, s)
		}
		return "", fmt.Errorf("gitpush: branch %q not found in local repository %s", strings.TrimPrefix(ref, "refs/heads/"), dir)
	}
	sha := strings.TrimSpace(stdout)
	if !isHexSHA(sha) {
		return "", fmt.Errorf("gitpush: unexpected output of git rev-parse %s: %q", ref, sha)
	}
	return sha, nil
}

// prepareRemote checks git on the host, creates the bare repository if
// needed and returns the sha of ref there ("" when absent) and whether the
// host already has the commit want.
func prepareRemote(ctx context.Context, c remote.Conn, repo, ref, want string) (string, bool, error) {
	gitDir := "--git-dir=" + repo
	cmd := "command -v git >/dev/null 2>&1 || exit 127; " +
		"if [ ! -f " + shell.Quote(path.Join(repo, "HEAD")) + " ]; then " +
		shell.Join("git", "init", "--bare", "-q", repo) + " && " +
		shell.Join("git", gitDir, "symbolic-ref", "HEAD", ref) + " || exit; fi; " +
		"{ " + shell.Join("git", gitDir, "rev-parse", "-q", "--verify", ref+"^{commit}") + " || echo; }; " +
		"if " + shell.Join("git", gitDir, "cat-file", "-e", want+"^{commit}") + " 2>/dev/null; then echo have; else echo lack; fi"
	code, stdout, stderr, err := run(ctx, c, cmd)
	if err != nil {
		return "", false, fmt.Errorf("%s: preparing repository %s: %w", c.Name(), repo, err)
	}
	if code == 127 {
		return "", false, fmt.Errorf("gitpush: %w on %s (needed for the bare repository %s)", ErrGitMissing, c.Name(), repo)
	}
	if code != 0 {
		return "", false, &CommandError{Host: c.Name(), Cmd: cmd, Code: code, Stderr: tail(stderr)}
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 2 || (lines[0] != "" && !isHexSHA(lines[0])) || (lines[1] != "have" && lines[1] != "lack") {
		return "", false, fmt.Errorf("%s: unexpected output reading %s in %s: %q", c.Name(), ref, repo, stdout)
	}
	return lines[0], lines[1] == "have", nil
}

// finish runs script on the host (display is what errors show of it), then
// checks that ref in repo is want.
func finish(ctx context.Context, c remote.Conn, repo, ref, want, script, display string) error {
	host := c.Name()
	cmd := script + " && " + shell.Join("git", "--git-dir="+repo, "rev-parse", "-q", "--verify", ref+"^{commit}")
	code, stdout, stderr, err := run(ctx, c, cmd)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", host, display, err)
	}
	if code != 0 {
		return &CommandError{Host: host, Cmd: display, Code: code, Stderr: tail(stderr)}
	}
	if got := strings.TrimSpace(stdout); got != want {
		return fmt.Errorf("%s: after push %s in %s is %q, want %s", host, ref, repo, got, want)
	}
	return nil
}

func cleanupRemote(ctx context.Context, c remote.Conn, p string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_, _, _, _ = run(ctx, c, "rm -f "+shell.Quote(p))
}

func run(ctx context.Context, c remote.Conn, cmd string) (int, string, string, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.Run(ctx, cmd, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String(), err
}

// runLocal runs a local command without a shell. A non-zero exit is (code, nil).
func runLocal(ctx context.Context, dir, name string, args ...string) (int, string, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return ee.ExitCode(), stdout.String(), stderr.String(), nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return -1, stdout.String(), stderr.String(), fmt.Errorf("local: %s %s: %w", name, strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String(), nil
}

// gitEnv is the environment minus variables that would redirect git away
// from the repository in cmd.Dir (set when shipit runs from a git hook).
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
			"SHIPIT_AGE_KEY": // a secret: never to git or its hooks
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

func isHexSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail is the end of a command's stderr kept in errors.
func tail(s string) string { return text.Tail(strings.TrimSpace(s), remote.StderrLines) }
