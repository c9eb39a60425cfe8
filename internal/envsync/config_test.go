package envsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// withUmask runs the test's host commands with a umask that lets new
// files be read by others, as on most hosts.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// `shipit config set` creates shared/ 0700 (it holds the env files and
// secrets), and tightens one a user left open.
func TestWriteConfigKeepsSharedPrivate(t *testing.T) {
	withUmask(t)
	ctx := context.Background()
	for _, pre := range []os.FileMode{0, 0o755} {
		app := filepath.Join(t.TempDir(), "app")
		if pre != 0 {
			os.MkdirAll(filepath.Join(app, "shared"), pre)
			os.Chmod(filepath.Join(app, "shared"), pre)
		}
		c := &localconn.Conn{HostName: "h", Dir: t.TempDir()}
		if err := WriteConfig(ctx, c, app, map[string]string{"A": "1"}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(app, "shared")); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("shared/ (before: %o): %v, %v", pre, fi.Mode().Perm(), err)
		}
		if fi, err := os.Stat(filepath.Join(app, ConfigFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("config.env: %v", err)
		}
	}
}

// The temp file config.env is written to is 0600 from its creation, not
// chmodded after: a cat on the host's PATH reports the mode of the file it
// writes to before it copies a byte.
func TestWriteConfigTempFilePrivateFromCreation(t *testing.T) {
	withUmask(t)
	dir := t.TempDir()
	bin, app, log := filepath.Join(dir, "bin"), filepath.Join(dir, "app"), filepath.Join(dir, "modes.log")
	os.MkdirAll(bin, 0o755)
	real, err := lookCat()
	if err != nil {
		t.Skip(err)
	}
	shim := "#!/bin/sh\nt=$(readlink /proc/$$/fd/1)\ncase \"$t\" in *.shipit-tmp-*) stat -c %a \"$t\" >> " + log + " ;; esac\nexec " + real + " \"$@\"\n"
	os.WriteFile(filepath.Join(bin, "cat"), []byte(shim), 0o755)
	c := &localconn.Conn{HostName: "h", Dir: dir, Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}}
	if err := WriteConfig(context.Background(), c, app, map[string]string{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	modes, _ := os.ReadFile(log)
	if string(modes) != "600\n" {
		t.Fatalf("temp file modes seen at creation: %q, want 600", modes)
	}
	if b, _ := os.ReadFile(filepath.Join(app, ConfigFile)); !strings.Contains(string(b), "A=") {
		t.Fatalf("config.env = %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(app, "shared", ".*shipit-tmp*")); len(left) > 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func lookCat() (string, error) {
	for _, p := range []string{"/bin/cat", "/usr/bin/cat"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no cat")
}

// Overlapping `config set`s on one host: each reads what the others
// wrote (the host's config lock), so none of their keys is lost, however
// slow each one is between its read and its write.
func TestOverlappingUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	app := filepath.Join(t.TempDir(), "app")
	c := &localconn.Conn{HostName: "h", Dir: t.TempDir()}
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- UpdateConfig(ctx, c, app, func(cur map[string]string) (bool, error) {
				cur[fmt.Sprintf("K%d", i)] = "v"
				time.Sleep(300 * time.Millisecond)
				return true, nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadConfig(ctx, c, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("config after %d overlapping updates: %v", n, got)
	}
	if fi, err := os.Stat(filepath.Join(app, ".shipit")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf(".shipit: %v", err)
	}
}
