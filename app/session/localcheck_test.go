package session

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// With the project in a subdirectory of the repository, the files are
// named relative to it, and only its shipit.toml, shipit.lua and secrets
// count as used.
func TestWarnDirtyInASubdirectory(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{"README", "shipit.toml", "app/shipit.toml", "app/shipit.lua", "app/.shipit/secrets/production.age", "app/main.go"}
	git("init", "-q", "-b", "main")
	for _, f := range files {
		write(f, "v1\n")
	}
	git("add", ".")
	git("commit", "-q", "-m", "init")
	for _, f := range files {
		write(f, "v2\n")
	}
	var out bytes.Buffer
	warnDirty(context.Background(), &out, filepath.Join(repo, "app"), "shipit.toml", "main")
	want := "shipit: warning: uncommitted changes are not deployed (../README, main.go, ../shipit.toml): shipit deploys the committed HEAD of main\n" +
		"shipit: warning: uncommitted changes ARE used (.shipit/secrets/production.age, shipit.lua, shipit.toml): shipit reads shipit.toml, shipit.lua and the secrets from this directory, not from the commit\n"
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	// A clean tree says nothing.
	git("commit", "-q", "-a", "-m", "v2")
	out.Reset()
	warnDirty(context.Background(), &out, filepath.Join(repo, "app"), "shipit.toml", "main")
	if strings.TrimSpace(out.String()) != "" {
		t.Fatalf("clean tree: %q", out.String())
	}
}
