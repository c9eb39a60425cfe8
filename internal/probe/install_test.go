package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// Install sends the probe once per host and version, then only links it.
func TestInstallSendsOnceThenLinks(t *testing.T) {
	app := t.TempDir()
	c := &localconn.Conn{HostName: "local"}
	ctx := context.Background()
	for i, rel := range []string{"r1", "r2"} {
		run := filepath.Join(app, "releases", rel, ".shipit-run")
		if err := Install(ctx, c, app, run); err != nil {
			t.Fatalf("release %s: %v", rel, err)
		}
		got, err := os.ReadFile(filepath.Join(run, File))
		if err != nil {
			t.Fatal(err)
		}
		want, id, _ := Binary(goruntime.GOARCH)
		if !bytes.Equal(got, want) {
			t.Fatalf("release %s: the linked probe is not the embedded one", rel)
		}
		st, _ := os.Stat(filepath.Join(run, File))
		if st.Mode().Perm() != 0o755 {
			t.Errorf("probe mode %v, want 0755 (any container user runs it)", st.Mode().Perm())
		}
		cached := filepath.Join(app, CacheDir, "shipit-probe-"+id+"-linux-"+goruntime.GOARCH)
		cst, err := os.Stat(cached)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(st, cst) {
			t.Errorf("release %s: probe is not a hard link of the host's cached copy", rel)
		}
		if i == 1 && len(c.Commands()) != 4 { // 1st: check, mkdir, link; 2nd: one check that links
			t.Errorf("second install ran %d commands in all, want 4 (3 for the first, 1 round trip for the second): %q", len(c.Commands()), c.Commands())
		}
	}
}
