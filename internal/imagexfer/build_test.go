package imagexfer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const baseImage = "shipit-busybox:latest"

func requireBase(t *testing.T) {
	t.Helper()
	requireDocker(t)
	if out, err := exec.Command("docker", "image", "inspect", baseImage).CombinedOutput(); err != nil {
		t.Fatalf("%s missing (run scripts/testenv.sh): %s", baseImage, out)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// composeRepo is a git repository with a compose project: web (build, no
// image name), worker (build, image:), cache (image only).
func composeRepo(t *testing.T, workerImage string) (dir, sha string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"Dockerfile": "FROM " + baseImage + "\nCOPY version /version\n",
		"version":    "committed\n",
		"compose.yml": "services:\n  web:\n    build: .\n  worker:\n    build:\n      context: .\n    image: " + workerImage +
			"\n  cache:\n    image: " + baseImage + "\n",
	}
	for n, c := range files {
		must(t, os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644))
	}
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "one")
	return dir, git(t, dir, "rev-parse", "HEAD")
}

func runIn(t *testing.T, img, cmd string) string {
	t.Helper()
	out, err := exec.Command("docker", "run", "--rm", img, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s", img, err, out)
	}
	return strings.TrimSpace(string(out))
}

func testBuild(t *testing.T, v2 bool) {
	requireBase(t)
	r := testRand()
	worker := "shipit-build-test-worker:" + r
	dir, sha := composeRepo(t, worker)
	// Uncommitted and untracked changes must not reach the image.
	must(t, os.WriteFile(filepath.Join(dir, "version"), []byte("uncommitted\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+baseImage+"\nCOPY version /version\nCOPY secret /secret\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o644))
	o := BuildOptions{RepoDir: dir, Commit: sha, ComposeFile: "compose.yml", Project: "Shipit.Test" + r, CacheDir: t.TempDir()}
	sep := "-"
	if !v2 {
		sep = "_"
	}
	want := map[string]string{"web": "shipittest" + r + sep + "web", "worker": worker}
	t.Cleanup(func() {
		for _, img := range want {
			_ = exec.Command("docker", "rmi", img).Run()
		}
	})
	plan, err := PlanBuild(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for svc, img := range want {
		if plan[svc] != img || got[svc] != img {
			t.Fatalf("plan %v, built %v, want %v", plan, got, want)
		}
	}
	if len(got) != 2 || len(plan) != 2 {
		t.Fatalf("built %v", got)
	}
	if v := runIn(t, want["web"], "cat /version; ls /secret 2>&1 || true"); !strings.HasPrefix(v, "committed") || !strings.Contains(v, "No such file") {
		t.Fatalf("image built from the working tree, not the commit: %q", v)
	}
	// A second commit: the build tree follows it.
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "two")
	o.Commit = git(t, dir, "rev-parse", "HEAD")
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if v := runIn(t, want["web"], "cat /version /secret"); v != "uncommitted\nx" {
		t.Fatalf("second build: %q", v)
	}
}

func TestBuildFromCommitComposeV2(t *testing.T) {
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Fatalf("docker compose v2 missing (scripts/testenv.sh installs it): %s", out)
	}
	testBuild(t, true)
}

func TestBuildFromCommitComposeV1(t *testing.T) {
	docker, err := exec.LookPath("docker")
	must(t, err)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose v1 missing (scripts/testenv.sh installs it)")
	}
	// Hide the v2 plugin so the build falls back to docker-compose.
	shim := filepath.Join(t.TempDir(), "docker")
	must(t, os.WriteFile(shim, []byte("#!/bin/sh\n[ \"$1\" = compose ] && exit 1\nexec "+docker+" \"$@\"\n"), 0o755))
	old := localDocker
	localDocker = shim
	t.Cleanup(func() { localDocker = old })
	testBuild(t, false)
}

func TestBuildNeedsCommit(t *testing.T) {
	dir, _ := composeRepo(t, "x:y")
	if _, err := Build(context.Background(), BuildOptions{RepoDir: dir, Project: "p"}); err == nil {
		t.Fatal("build without a commit")
	}
	if _, err := Build(context.Background(), BuildOptions{RepoDir: dir, Commit: strings.Repeat("0", 40), Project: "p", CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not in") {
		t.Fatalf("unknown commit: %v", err)
	}
}

func TestTagForRelease(t *testing.T) {
	requireBase(t)
	dst := "shipit-tag-test:" + testRand()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", dst).Run() })
	if err := TagForRelease(context.Background(), baseImage, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := LocalImageID(context.Background(), baseImage)
	b, err := LocalImageID(context.Background(), dst)
	if err != nil || a != b {
		t.Fatalf("%s = %s, %v; want %s", dst, b, err, a)
	}
}

// The local engine's own `docker save` (Engine 20.10 here: legacy layout)
// marks its top layer the way legacyIndex expects: a new top layer is found
// without spooling anything.
func TestRealSaveTopLayerFromMetadata(t *testing.T) {
	requireBase(t)
	dir := t.TempDir()
	r := testRand()
	must(t, os.WriteFile(filepath.Join(dir, "a"), []byte("a "+r), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "b"), []byte("b "+r), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+baseImage+"\nCOPY a /a\nCOPY b /b\nCMD [\"true\"]\n"), 0o644))
	ref := "shipit-save-test:" + r
	if out, err := exec.Command("docker", "build", "-q", "-t", ref, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", ref).Run() })
	img, err := inspectLocal(context.Background(), ref)
	must(t, err)
	stream, err := exec.Command("docker", "save", ref).Output()
	must(t, err)
	top := img.DiffIDs[len(img.DiffIDs)-1]
	w, res, spooled := extractSingle(t, stream, img, img.DiffIDs, top)
	if len(w.blobs) != 1 || w.blobs[top] == nil || spooled != 0 {
		t.Fatalf("produced %d layers (top: %v), spooled %d", len(w.blobs), w.blobs[top] != nil, spooled)
	}
	if _, _, err := w.blobs[top].wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cfg, dg, err := configFor(res, img); err != nil || dg != img.ID || len(cfg) == 0 {
		t.Fatalf("config: %v (%s, want %s)", err, dg, img.ID)
	}
}

// The plan and the build of one deploy share one checkout of the commit; a
// checkout by another run in between, or another commit, checks out again.
func TestBuildTreeCheckedOutOncePerRun(t *testing.T) {
	dir, sha := composeRepo(t, "unused:1")
	o := BuildOptions{RepoDir: dir, Commit: sha, CacheDir: t.TempDir(), Project: "tree"}
	var tree string
	stat := func() (string, int64) {
		t.Helper()
		must(t, withTree(context.Background(), o, func(d string) error { tree = d; return nil }))
		fi, err := os.Stat(filepath.Join(tree, "version"))
		must(t, err)
		b, _ := os.ReadFile(filepath.Join(tree, "version"))
		return string(b), fi.ModTime().UnixNano()
	}
	_, m1 := stat()
	must(t, os.WriteFile(filepath.Join(tree, "stray"), []byte("x"), 0o644))
	if _, m2 := stat(); m2 != m1 {
		t.Fatal("the same run checked out the same commit twice")
	}
	if _, err := os.Stat(filepath.Join(tree, "stray")); err != nil {
		t.Fatal("the same run checked out the same commit twice (stray file gone)")
	}
	// Another run checked out in between: its marker replaced ours.
	must(t, os.WriteFile(filepath.Join(filepath.Dir(tree), "checkout"), []byte(sha+" 1 other"), 0o600))
	stat()
	if _, err := os.Stat(filepath.Join(tree, "stray")); !os.IsNotExist(err) {
		t.Fatalf("tree not checked out again after another run's checkout: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "version"), []byte("two\n"), 0o644))
	git(t, dir, "commit", "-q", "-am", "two")
	o.Commit = git(t, dir, "rev-parse", "HEAD")
	if v, _ := stat(); v != "two\n" {
		t.Fatalf("tree at %q after a new commit", v)
	}
}
