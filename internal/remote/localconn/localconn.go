// Package localconn is a remote.Conn that runs on this machine: the seam
// for unit tests of recipes and builtins (end-to-end tests use real sshd).
package localconn

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn runs commands with sh -c in Dir.
type Conn struct {
	HostName string
	Dir      string
	Env      []string // added to this process's environment (later entries win)

	mu   sync.Mutex
	cmds []string
}

// Commands returns every command Run was given, in order.
func (c *Conn) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

func (c *Conn) Name() string { return c.HostName }

func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	x := exec.CommandContext(ctx, "sh", "-c", cmd)
	x.Dir = c.Dir
	x.Env = append(os.Environ(), c.Env...)
	x.Stdout, x.Stderr = stdout, stderr
	var stdinErr atomic.Pointer[error]
	if stdin != nil {
		// As over SSH: the caller's stdin is copied on the side and the
		// command's end does not wait for it (a lock holder's stdin stays
		// open for as long as the caller wants).
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		go func() {
			// A read error of the caller's stdin fails the command, as
			// over SSH (it is recorded before the command sees EOF).
			if _, err := io.Copy(pw, stdin); err != nil {
				stdinErr.Store(&err)
			}
			pw.Close()
		}()
		defer pr.Close()
		x.Stdin = pr
	}
	// Kill the whole process group on cancel: a child holding the pipes
	// would otherwise keep Wait blocked.
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	x.WaitDelay = time.Second
	err := x.Run()
	if ctx.Err() != nil {
		return -1, ctx.Err() // as sshpool reports a cancelled command
	}
	if e := stdinErr.Load(); e != nil {
		return -1, *e
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func (c *Conn) WriteFile(ctx context.Context, path string, r io.Reader, size int64, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
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
	return os.Rename(f.Name(), path)
}

func (c *Conn) Exists(ctx context.Context, path string) (bool, error) {
	_, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}
