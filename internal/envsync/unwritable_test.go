package envsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shipit-dev/shipit/internal/dotenv"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// An entry no env file can carry (a shipit.toml env key that is not a
// variable name, a NUL, invalid UTF-8) is an error naming the key, not a
// panic, and nothing is written.
func TestUnwritableEntriesAreErrors(t *testing.T) {
	ctx := context.Background()
	for _, bad := range []map[string]string{{"my-key": "x"}, {"NUL": "a\x00b"}, {"BIN": "\xff"}} {
		app := t.TempDir()
		c := &localconn.Conn{HostName: "h", Dir: app}
		var key string
		for k := range bad {
			key = k
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%q: panic: %v", bad, r)
				}
			}()
			_, err := Sync(ctx, c, app, Sources{Stage: bad, SecretsHash: "aa"})
			var ve *dotenv.ValueError
			if !errors.As(err, &ve) || ve.Key != key {
				t.Errorf("Sync(%q) = %v, want *dotenv.ValueError for %q", bad, err, key)
			}
			err = WriteConfig(ctx, c, app, bad)
			if !errors.As(err, &ve) || ve.Key != key {
				t.Errorf("WriteConfig(%q) = %v, want *dotenv.ValueError for %q", bad, err, key)
			}
		}()
		for _, f := range []string{EnvFile, SourcesFile, ConfigFile} {
			if _, err := os.Stat(filepath.Join(app, f)); err == nil {
				t.Errorf("%q: %s written", bad, f)
			}
		}
	}
}
