package gitpush

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

type env struct {
	local, remoteRepo, work string
	conn                    *localConn
}

func setup(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{
		local:      filepath.Join(root, "local"),
		remoteRepo: filepath.Join(root, "host", "var", "deploy", "app", "repo"),
		work:       filepath.Join(root, "hostcwd"),
	}
	for _, d := range []string{e.local, e.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.conn = &localConn{HostName: "web1.example", Dir: e.work}
	git(t, e.local, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(e.local, "big.bin"), randomBytes(256<<10))
	writeFile(t, filepath.Join(e.local, "docker-compose.yml"), []byte("services: {}\n"))
	git(t, e.local, "add", "-A")
	git(t, e.local, "commit", "-q", "-m", "first")
	return e
}

func (e *env) push(t *testing.T, branch string) Result {
	t.Helper()
	res, err := Push(context.Background(), e.conn, Options{
		LocalRepo: e.local, Branch: branch, RemoteRepo: e.remoteRepo, Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("Push(%q): %v", branch, err)
	}
	if got := git(t, e.local, "rev-parse", "refs/heads/"+branch); res.SHA != got {
		t.Fatalf("Result.SHA = %s, local %s", res.SHA, got)
	}
	if got := git(t, e.work, "--git-dir="+e.remoteRepo, "rev-parse", "refs/heads/"+branch); got != res.SHA {
		t.Fatalf("remote ref = %s, want %s", got, res.SHA)
	}
	left, _ := filepath.Glob(filepath.Join(e.remoteRepo, "shipit-push-*"))
	if len(left) > 0 {
		t.Fatalf("bundle left on host: %v", left)
	}
	return res
}

func TestPushFullIncrementalSkippedRewritten(t *testing.T) {
	e := setup(t)

	first := e.push(t, "main")
	if first.Skipped || first.Incremental || first.Bytes < 200<<10 {
		t.Fatalf("first push = %+v, want full bundle with the 256 KiB file", first)
	}

	writeFile(t, filepath.Join(e.local, "app.txt"), []byte("v2\n"))
	git(t, e.local, "add", "-A")
	git(t, e.local, "commit", "-q", "-m", "second")
	second := e.push(t, "main")
	if second.Skipped || !second.Incremental {
		t.Fatalf("second push = %+v, want incremental", second)
	}
	if second.Bytes >= first.Bytes/10 {
		t.Fatalf("incremental bundle %d bytes, full was %d", second.Bytes, first.Bytes)
	}

	third := e.push(t, "main")
	if !third.Skipped || third.Bytes != 0 {
		t.Fatalf("third push = %+v, want skipped", third)
	}

	// Rewrite history: the host's sha is no longer an ancestor, but we know
	// it, so the bundle still leaves out what the host has (the big file).
	git(t, e.local, "reset", "-q", "--hard", "HEAD~1")
	writeFile(t, filepath.Join(e.local, "app.txt"), []byte("rewritten\n"))
	git(t, e.local, "add", "-A")
	git(t, e.local, "commit", "-q", "-m", "rewritten")
	fourth := e.push(t, "main")
	if fourth.Skipped || !fourth.Incremental || fourth.Bytes >= first.Bytes/10 {
		t.Fatalf("push after rewrite = %+v, want a small bundle", fourth)
	}

	// Step 3 works on what we pushed.
	rel := filepath.Join(t.TempDir(), "release")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, e.work, "--work-tree="+rel, "--git-dir="+e.remoteRepo, "checkout", "-f", "main")
	got, err := os.ReadFile(filepath.Join(rel, "app.txt"))
	if err != nil || string(got) != "rewritten\n" {
		t.Fatalf("checked out app.txt = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(rel, "big.bin")); err != nil {
		t.Fatal(err)
	}
	if head := git(t, e.work, "--git-dir="+e.remoteRepo, "symbolic-ref", "HEAD"); head != "refs/heads/main" {
		t.Fatalf("remote HEAD = %s", head)
	}
}

// The host has a commit this clone never saw (another clone deployed, or it
// was gc'd here): the host's sha is no basis, so a full bundle is sent and
// the branch is force-updated.
func TestPushUnknownHostHistoryFallsBackToFull(t *testing.T) {
	e := setup(t)
	other := &env{local: filepath.Join(t.TempDir(), "other"), remoteRepo: e.remoteRepo, work: e.work, conn: e.conn}
	must(t, os.MkdirAll(other.local, 0o755))
	git(t, other.local, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(other.local, "other.txt"), []byte("other\n"))
	git(t, other.local, "add", "-A")
	git(t, other.local, "commit", "-q", "-m", "other")
	other.push(t, "main")

	res := e.push(t, "main")
	if res.Skipped || res.Incremental || res.Bytes < 200<<10 {
		t.Fatalf("push over unknown history = %+v, want full", res)
	}
}

// Deploying an older commit (rollback) that the host already has sends
// nothing: the branch is moved with update-ref.
func TestPushRollbackMovesRef(t *testing.T) {
	e := setup(t)
	first := e.push(t, "main")
	writeFile(t, filepath.Join(e.local, "app.txt"), []byte("v2\n"))
	git(t, e.local, "add", "-A")
	git(t, e.local, "commit", "-q", "-m", "second")
	e.push(t, "main")
	git(t, e.local, "reset", "-q", "--hard", first.SHA)
	res := e.push(t, "main")
	if res.Skipped || res.Bytes != 0 || res.SHA != first.SHA {
		t.Fatalf("rollback push = %+v", res)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPushBranchWithShellMetacharacters(t *testing.T) {
	e := setup(t)
	branch := "feat/$(touch${IFS}pwned)`touch${IFS}pwned2`;touch${IFS}pwned3"
	// git accepts this as a branch name; quoting must keep it inert.
	git(t, e.local, "branch", branch)
	res := e.push(t, branch)
	if res.Skipped || res.Incremental {
		t.Fatalf("push = %+v", res)
	}
	for _, dir := range []string{e.work, e.local, filepath.Dir(e.remoteRepo), e.remoteRepo, "."} {
		for _, f := range []string{"pwned", "pwned2", "pwned3"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Fatalf("shell injection: %s created in %s", f, dir)
			}
		}
	}
}

func TestPushRejectsBadBranches(t *testing.T) {
	e := setup(t)
	git(t, e.local, "checkout", "-q", "-b", "other")
	git(t, e.local, "checkout", "-q", "main")
	for _, b := range []string{"", "a b", "x..y", "-rf", "@{-1}", "refs/heads/main", "a~1", "a:b", "feat/$(touch${IFS}pwned) x"} {
		_, err := Push(context.Background(), e.conn, Options{LocalRepo: e.local, Branch: b, RemoteRepo: e.remoteRepo})
		if err == nil {
			t.Errorf("Push(%q) succeeded, want invalid branch error", b)
			continue
		}
		if !strings.Contains(err.Error(), "branch") {
			t.Errorf("Push(%q) error %q does not mention the branch", b, err)
		}
	}
	if len(e.conn.Commands()) != 0 {
		t.Fatalf("remote commands ran for invalid branches: %q", e.conn.Commands())
	}
	if _, err := os.Stat(filepath.Join(e.work, "pwned")); err == nil {
		t.Fatal("shell injection")
	}
}

func TestPushMissingBranch(t *testing.T) {
	e := setup(t)
	_, err := Push(context.Background(), e.conn, Options{LocalRepo: e.local, Branch: "nope", RemoteRepo: e.remoteRepo})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want branch \"nope\" not found", err)
	}
}

func TestPushGitMissingOnHost(t *testing.T) {
	e := setup(t)
	e.conn.Env = []string{"PATH=" + t.TempDir()}
	_, err := Push(context.Background(), e.conn, Options{LocalRepo: e.local, Branch: "main", RemoteRepo: e.remoteRepo})
	if !errors.Is(err, ErrGitMissing) || !strings.Contains(err.Error(), "git is not installed on web1.example") {
		t.Fatalf("err = %v", err)
	}
}

func TestPushFetchFailureRemovesBundle(t *testing.T) {
	e := setup(t)
	e.push(t, "main")
	writeFile(t, filepath.Join(e.local, "app.txt"), []byte("v2\n"))
	git(t, e.local, "add", "-A")
	git(t, e.local, "commit", "-q", "-m", "second")
	// A stale ref lock makes the remote fetch fail.
	lock := filepath.Join(e.remoteRepo, "refs", "heads", "main.lock")
	writeFile(t, lock, nil)
	_, err := Push(context.Background(), e.conn, Options{LocalRepo: e.local, Branch: "main", RemoteRepo: e.remoteRepo})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CommandError", err)
	}
	if ce.Host != "web1.example" || ce.Code == 0 || !strings.Contains(ce.Cmd, "fetch") || !strings.Contains(ce.Stderr, "lock") {
		t.Fatalf("CommandError = %+v", ce)
	}
	if !strings.Contains(err.Error(), "web1.example") {
		t.Fatalf("error does not name host: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(e.remoteRepo, "shipit-push-*"))
	if len(left) > 0 {
		t.Fatalf("bundle left on host after failure: %v", left)
	}
	os.Remove(lock)
	if r := e.push(t, "main"); !r.Incremental {
		t.Fatalf("retry = %+v", r)
	}
}

func TestPushCancelled(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Push(ctx, e.conn, Options{LocalRepo: e.local, Branch: "main", RemoteRepo: e.remoteRepo}); err == nil {
		t.Fatal("Push with cancelled context succeeded")
	}
}
