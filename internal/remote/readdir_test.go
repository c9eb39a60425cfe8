package remote_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// Over a connection that only runs commands, ReadDir lists with ls: sorted
// names without the hidden ones; a missing directory is fs.ErrNotExist.
func TestReadDirByCommand(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"20250219-140000", "20250219-120000", ".hidden"} {
		os.Mkdir(filepath.Join(dir, n), 0o755)
	}
	c := &localconn.Conn{HostName: "h", Dir: dir}
	got, err := remote.ReadDir(context.Background(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"20250219-120000", "20250219-140000"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadDir = %q, want %q", got, want)
	}
	if _, err := remote.ReadDir(context.Background(), c, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: err %v, want fs.ErrNotExist", err)
	}
}
