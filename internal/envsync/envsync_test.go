package envsync

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shipit-dev/shipit/internal/dotenv"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

func TestMergePrecedence(t *testing.T) {
	got := Merge(map[string]string{"A": "toml", "B": "toml"}, map[string]string{"B": "config", "C": "config"}, map[string]string{"C": "secret", "D": "secret"})
	want := []Merged{
		{Key: "A", Value: "toml", Source: FromStage},
		{Key: "B", Value: "config", Source: FromConfig, Shadows: []string{FromStage}},
		{Key: "C", Value: "secret", Source: FromSecrets, Shadows: []string{FromConfig}},
		{Key: "D", Value: "secret", Source: FromSecrets},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %+v", got)
	}
}

func readEnv(t *testing.T, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	es, err := dotenv.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range es {
		m[e.Key] = e.Value
	}
	return m
}

func TestSyncWritesOnlyOnChangeAndKeepsSources(t *testing.T) {
	ctx := context.Background()
	app := t.TempDir()
	c := &localconn.Conn{HostName: "h", Dir: app}
	if err := WriteConfig(ctx, c, app, map[string]string{"PLAIN": "p=1"}); err != nil {
		t.Fatal(err)
	}
	src := Sources{Stage: map[string]string{"T": "toml"}, Secrets: map[string]string{"S": "multi\nline 'q' \"dq\" $x"}, SecretsHash: "aa"}
	res, err := Sync(ctx, c, app, src)
	if err != nil || !res.Written || res.Keys != 3 {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	envPath := filepath.Join(app, EnvFile)
	if fi, _ := os.Stat(envPath); fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env mode %o", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(app, ConfigFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.env mode %o", fi.Mode().Perm())
	}
	want := map[string]string{"T": "toml", "PLAIN": "p=1", "S": src.Secrets["S"]}
	if got := readEnv(t, envPath); !reflect.DeepEqual(got, want) {
		t.Fatalf(".env = %v", got)
	}
	// Same sources: skipped, even with secrets unavailable (not needed).
	res, err = Sync(ctx, c, app, Sources{Stage: src.Stage, SecretsHash: "aa", SecretsErr: os.ErrPermission})
	if err != nil || res.Written {
		t.Fatalf("unchanged sync: %+v %v", res, err)
	}
	// A config change rewrites and keeps the secret.
	if err := WriteConfig(ctx, c, app, map[string]string{"PLAIN": "p=2"}); err != nil {
		t.Fatal(err)
	}
	if res, err = Sync(ctx, c, app, src); err != nil || !res.Written {
		t.Fatalf("config change: %+v %v", res, err)
	}
	if got := readEnv(t, envPath); got["PLAIN"] != "p=2" || got["S"] != src.Secrets["S"] {
		t.Fatalf(".env after config change = %v", got)
	}
	// A secret change needs the secrets; without them it fails loudly.
	if _, err = Sync(ctx, c, app, Sources{Stage: src.Stage, SecretsHash: "bb", SecretsErr: os.ErrPermission}); err == nil {
		t.Fatal("changed secrets without an identity must fail")
	}
	// A deleted .env is rewritten even when nothing changed.
	os.Remove(envPath)
	if res, err = Sync(ctx, c, app, src); err != nil || !res.Written {
		t.Fatalf("missing .env: %+v %v", res, err)
	}
}

func TestSnapshotAndRestore(t *testing.T) {
	ctx := context.Background()
	app := t.TempDir()
	c := &localconn.Conn{HostName: "h", Dir: app}
	rel := filepath.Join(app, "releases", "r1")
	os.MkdirAll(rel, 0o755)
	if _, err := Sync(ctx, c, app, Sources{Stage: map[string]string{"V": "one"}}); err != nil {
		t.Fatal(err)
	}
	run := func(cmd string) {
		if code, err := c.Run(ctx, cmd, nil, os.Stderr, os.Stderr); err != nil || code != 0 {
			t.Fatalf("%s: %d %v", cmd, code, err)
		}
	}
	run(SnapshotCmd(app, rel))
	if fi, _ := os.Stat(filepath.Join(rel, Snapshot)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode %o", fi.Mode().Perm())
	}
	if _, err := Sync(ctx, c, app, Sources{Stage: map[string]string{"V": "two"}}); err != nil {
		t.Fatal(err)
	}
	run(BackupCmd(app))
	run(RestoreCmd(app, rel))
	if got := readEnv(t, filepath.Join(app, EnvFile)); got["V"] != "one" {
		t.Fatalf("restore gave %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(app, EnvFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored env mode %o", fi.Mode().Perm())
	}
	// The backup holds the env of before the change, and a second backup
	// of the same change keeps it.
	run(BackupCmd(app))
	if got := readEnv(t, filepath.Join(app, UndoDir, ".env")); got["V"] != "two" {
		t.Fatalf("backup holds %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(app, UndoDir)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("backup dir mode %o", fi.Mode().Perm())
	}
}
