package imagexfer

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/shipit-dev/shipit/internal/remote"
)

var _ remote.Conn = (*localConn)(nil)

// localConn is a remote.Conn that runs commands on this machine with sh -c.
// It is a unit-test seam; the real sshd end-to-end is tested elsewhere.
type localConn struct {
	name string
	dir  string   // working directory of commands
	env  []string // nil: inherit

	mu   sync.Mutex
	cmds []string
}

func (c *localConn) Name() string { return c.name }

func (c *localConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	x := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	x.Dir = c.dir
	x.Env = c.env
	x.Stdin, x.Stdout, x.Stderr = stdin, stdout, stderr
	err := x.Run()
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func (c *localConn) WriteFile(ctx context.Context, path string, r io.Reader, size int64, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".shipit-tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (c *localConn) Exists(ctx context.Context, path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (c *localConn) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}
