package recipes_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/shipit-dev/shipit/builtins/all"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
	"github.com/shipit-dev/shipit/recipes"
	"github.com/shipit-dev/shipit/runtime"
)

func envFor(t *testing.T) *runtime.Env {
	t.Helper()
	cfg, err := config.Parse([]byte("[app]\nname = \"x\"\n[stages.p]\nhosts = [{ address = \"h\" }]\n"), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	return &runtime.Env{Config: cfg, Stage: "p", Sink: runtime.Discard}
}

func load(t *testing.T) *runtime.State {
	t.Helper()
	c, err := runtime.Compile(runtime.Script{Name: recipes.DefaultName, Source: recipes.Default})
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewState(envFor(t), nil, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The step names and their order are a public contract (DESIGN.md §2).
func TestDeployPipelineIsTheContract(t *testing.T) {
	s := load(t)
	want := []string{"deploy:release", "deploy:push", "deploy:checkout", "deploy:override", "deploy:env", "deploy:build",
		"deploy:start", "deploy:health", "deploy:stop_previous", "deploy:symlink", "deploy:lockfile", "deploy:cleanup"}
	got := s.Plan.Tasks["deploy"].Steps
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("deploy steps = %v", got)
	}
	for _, name := range append(want, "rollback", "releases") {
		if t2, ok := s.Plan.Tasks[name]; !ok || t2.Desc == "" {
			t.Errorf("task %s missing or undocumented", name)
		}
	}
}

// A second deploy in the same second gets the next free name instead of
// clobbering the release that already exists.
func TestReleaseNameCollisionNeverClobbers(t *testing.T) {
	dir := t.TempDir()
	c, err := runtime.Compile(runtime.Script{Name: recipes.DefaultName, Source: recipes.Default})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("[app]\nname = \"x\"\n[stages.p]\nhosts = [{ address = \"h\" }]\n"), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 2; i++ {
		h := &runtime.Host{Conn: &localconn.Conn{HostName: "h", Dir: dir}, Name: "h", Stage: "p", App: "x", AppPath: dir, Release: "20250101-120000"}
		s, err := runtime.NewState(&runtime.Env{Config: cfg, Stage: "p", Sink: runtime.Discard}, h, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RunTask(context.Background(), "deploy:release"); err != nil {
			t.Fatal(err)
		}
		h.Finish()
		s.Close()
		got = append(got, h.Release)
	}
	if got[0] != "20250101-120000" || got[1] != "20250101-120001" {
		t.Fatalf("release names %v", got)
	}
	for _, r := range got {
		if fi, err := os.Stat(filepath.Join(dir, "releases", r)); err != nil || !fi.IsDir() {
			t.Fatalf("release dir %s: %v", r, err)
		}
	}
}
