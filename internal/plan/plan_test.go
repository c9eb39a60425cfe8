package plan

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// A plan reads the host and changes nothing; env changes are named by key.
func TestDeployPlanNamesEnvKeysOnly(t *testing.T) {
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, "shared"), 0o700)
	os.MkdirAll(filepath.Join(app, "releases", "r1"), 0o755)
	os.Symlink("releases/r1", filepath.Join(app, "current"))
	os.WriteFile(filepath.Join(app, "shared", ".env"), []byte("KEEP=1\nCHANGE=old\nGONE=x\n"), 0o600)
	os.WriteFile(filepath.Join(app, "shared", "config.env"), []byte("FROM_CONFIG=c\n"), 0o600)
	lock := `{"current_release": "r1", "previous_release": null, "git_sha": "abc", "secrets_hash": null, "deployed_at": "2025-02-19T14:00:00-03:00"}`
	os.WriteFile(filepath.Join(app, "shipit.lock"), []byte(lock), 0o644)
	before := snapshot(t, app)
	c := &localconn.Conn{HostName: "h", Dir: app}
	p, err := Deploy(context.Background(), c, app, t.TempDir(), "def", map[string]string{"KEEP": "1", "CHANGE": "new"}, map[string]string{"SECRET": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Current != "r1" || p.CurrentSHA != "abc" || p.TargetSHA != "def" {
		t.Fatalf("plan = %+v", p)
	}
	if !reflect.DeepEqual(p.EnvAdded, []string{"FROM_CONFIG", "SECRET"}) || !reflect.DeepEqual(p.EnvChanged, []string{"CHANGE"}) ||
		!reflect.DeepEqual(p.EnvRemoved, []string{"GONE"}) {
		t.Fatalf("env diff = +%v ~%v -%v", p.EnvAdded, p.EnvChanged, p.EnvRemoved)
	}
	if after := snapshot(t, app); after != before {
		t.Fatal("planning changed the host")
	}
}

func snapshot(t *testing.T, dir string) string {
	var s string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			b, _ := os.ReadFile(p)
			s += p + fi.Mode().String() + string(b) + "\n"
		}
		return nil
	})
	return s
}
