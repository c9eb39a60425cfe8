package runtime

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"

	"github.com/shipit-dev/shipit/internal/remote"
)

// guardedConn is the one place a host's remote operations go out: while a
// guard is set (a held deploy lock, see SetGuard), every command runs
// behind its shell test, and nothing is sent once its check fails (shipit
// gave the host up). A shipit that was frozen or cut off past the holder's
// timeout therefore changes nothing the host settled without it.
type guardedConn struct {
	remote.Conn
	h *Host
}

// Unwrap is the guarded connection.
func (c *guardedConn) Unwrap() remote.Conn { return c.Conn }

func (c *guardedConn) allowed() (string, error) {
	prefix, check := c.h.guardOf()
	if check != nil {
		if err := check(); err != nil {
			return "", err
		}
	}
	return prefix, nil
}

func (c *guardedConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	prefix, err := c.allowed()
	if err != nil {
		return -1, err
	}
	return c.Conn.Run(ctx, prefix+cmd, stdin, stdout, stderr)
}

// WriteFile asks the host's guard first: SFTP cannot run behind it. (A
// settle that starts between the two is caught by the next command.)
func (c *guardedConn) WriteFile(ctx context.Context, p string, r io.Reader, size int64, mode os.FileMode) error {
	prefix, err := c.allowed()
	if err != nil {
		return err
	}
	if v := c.h.writeGuard(); prefix != "" && v != nil {
		if err := v(ctx, c.Conn); err != nil {
			return remote.Failed(c.Name(), "put "+p, -1, err.Error(), "")
		}
	} else if prefix != "" {
		var errb strings.Builder
		code, err := c.Conn.Run(ctx, prefix+"true", nil, io.Discard, &errb)
		if err != nil {
			return err
		}
		if code != 0 {
			return remote.Failed(c.Name(), "put "+p, code, errb.String(), "")
		}
	}
	return c.Conn.WriteFile(ctx, p, r, size, mode)
}

func (c *guardedConn) Exists(ctx context.Context, p string) (bool, error) {
	if _, err := c.allowed(); err != nil {
		return false, err
	}
	return c.Conn.Exists(ctx, p)
}

// ReadFile, ReadDir, DialContext and RunPTY are the optional abilities of
// the wrapped connection, kept visible through the wrapper.
func (c *guardedConn) ReadFile(ctx context.Context, p string) ([]byte, error) {
	if _, err := c.allowed(); err != nil {
		return nil, err
	}
	return remote.ReadFile(ctx, c.Conn, p)
}

func (c *guardedConn) ReadDir(ctx context.Context, p string) ([]string, error) {
	if _, err := c.allowed(); err != nil {
		return nil, err
	}
	return remote.ReadDir(ctx, c.Conn, p)
}

func (c *guardedConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d, err := dialerOf(c.Conn)
	if err != nil {
		return nil, err
	}
	if _, err := c.allowed(); err != nil {
		return nil, err
	}
	return d.DialContext(ctx, network, addr)
}

func (c *guardedConn) RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error) {
	p, err := ptyOf(c.Conn)
	if err != nil {
		return 0, err
	}
	prefix, err := c.allowed()
	if err != nil {
		return -1, err
	}
	return p.RunPTY(ctx, prefix+cmd, stdin, stdout, term, w, h, resize)
}

// ptyRunner is a connection that can run a terminal session (sshpool's).
type ptyRunner interface {
	RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error)
}

// dialerOf and ptyOf find the optional abilities of a wrapped connection,
// for the wrappers (guardedConn, tracedConn) that keep them visible.
func dialerOf(c remote.Conn) (remote.Dialer, error) {
	if d, ok := c.(remote.Dialer); ok {
		return d, nil
	}
	return nil, errors.New("this connection cannot open TCP connections from the host")
}

func ptyOf(c remote.Conn) (ptyRunner, error) {
	if p, ok := c.(ptyRunner); ok {
		return p, nil
	}
	return nil, errors.New("this connection cannot run a terminal session")
}
