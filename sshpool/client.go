package sshpool

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Client is one pooled SSH connection. It is safe for concurrent use.
type Client struct {
	pool    *Pool
	poolKey string
	target  *resolved // what it was dialled as (Separate dials it again)
	name    string
	addr    string
	ssh     *ssh.Client
	sem     chan struct{}

	sftpMu sync.Mutex
	sftp   *sftp.Client

	// The warm shell (warm.go): at most one, used by one Run at a time.
	noWarm       bool // Separate's connections keep plain sessions
	warmMu       sync.Mutex
	warm         *warmShell
	warmBusy     bool
	warmStarting chan struct{} // closed when prewarm's start ends
	prewarmOnce  sync.Once
	warmRuns     int // Runs without stdin so far
	warmFailures int
	warmSent     int // commands sent to a warm shell (tests)

	closeOnce sync.Once
	stop      chan struct{}
	deadMu    sync.Mutex
	deadErr   error
}

func newClient(p *Pool, r *resolved, sc *ssh.Client) *Client {
	c := &Client{
		pool:   p,
		target: r,
		name:   r.name,
		addr:   r.id(),
		ssh:    sc,
		sem:    make(chan struct{}, p.cfg.MaxSessions),
		stop:   make(chan struct{}),
	}
	go c.keepalive(p.cfg.KeepAlive)
	go func() {
		err := sc.Wait()
		if err == nil {
			err = errors.New("connection closed by remote host")
		}
		c.close(fmt.Errorf("connection lost: %w", err))
	}()
	return c
}

// Name is the host as the user wrote it.
func (c *Client) Name() string { return c.name }

// Addr is "user@host:port" after ssh_config resolution.
func (c *Client) Addr() string { return c.addr }

func (c *Client) close(reason error) error {
	var err error
	c.closeOnce.Do(func() {
		c.deadMu.Lock()
		c.deadErr = reason
		c.deadMu.Unlock()
		close(c.stop)
		c.pool.forget(c)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		err = c.ssh.Close()
	})
	return err
}

// Separate dials another connection to the same host, outside the pool:
// its sessions never queue behind this one's bulk transfers (one TCP
// stream carries all of a connection's channels). The caller closes it;
// Pool.Close closes it too.
func (c *Client) Separate(ctx context.Context) (*Client, error) {
	p := c.pool
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout*time.Duration(1+len(c.target.proxy)))
	defer cancel()
	s, err := p.connect(ctx, c.target)
	if err != nil {
		return nil, err
	}
	s.noWarm = true
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.extra[s] = struct{}{}
	}
	p.mu.Unlock()
	if closed {
		s.close(errors.New("pool closed"))
		return nil, fmt.Errorf("ssh %s: pool closed", c.addr)
	}
	return s, nil
}

// Close closes a connection from Separate (pooled ones close with the pool).
func (c *Client) Close() error {
	c.pool.mu.Lock()
	delete(c.pool.extra, c)
	c.pool.mu.Unlock()
	err := c.close(errors.New("closed"))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (c *Client) isClosed() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// errf wraps err with the host, preferring the reason the connection died.
func (c *Client) errf(format string, args ...any) error {
	c.deadMu.Lock()
	dead := c.deadErr
	c.deadMu.Unlock()
	err := fmt.Errorf(format, args...)
	if dead != nil {
		return fmt.Errorf("ssh %s: %w (%v)", c.addr, err, dead)
	}
	return fmt.Errorf("ssh %s: %w", c.addr, err)
}

func (c *Client) keepalive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	var reply chan error
	for {
		select {
		case <-c.stop:
			return
		case err := <-reply:
			reply = nil
			missed = 0
			if err != nil {
				c.close(fmt.Errorf("keepalive failed: %w", err))
				return
			}
		case <-t.C:
			if reply != nil {
				missed++
				if missed >= 3 {
					c.close(fmt.Errorf("no reply to 3 keepalives in %v: connection dead", 3*interval))
					return
				}
				continue
			}
			reply = make(chan error, 1)
			go func(ch chan error) {
				_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
				ch <- err
			}(reply)
		}
	}
}

func (c *Client) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errors.New("connection closed")
	}
}

func (c *Client) release() { <-c.sem }

// Run executes cmd via the remote shell. A non-zero exit is (code, nil).
// Without stdin it uses the Client's warm shell when that is idle (warm.go).
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if stdin == nil {
		if w := c.takeWarm(ctx, cmd); w != nil {
			if code, sent, err := c.runWarm(ctx, w, cmd, stdout, stderr); sent {
				return code, err
			}
		}
	}
	return c.runSession(ctx, cmd, stdin, stdout, stderr)
}

// runSession runs cmd in a session of its own.
func (c *Client) runSession(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := c.acquire(ctx); err != nil {
		return -1, c.errf("run: %w", err)
	}
	// Opening a session waits for the server and ignores ctx, so it runs
	// in a goroutine that owns the semaphore slot until it is done.
	type started struct {
		sess *ssh.Session
		err  error
	}
	startc := make(chan started, 1)
	go func() {
		sess, err := c.ssh.NewSession()
		if err != nil {
			startc <- started{nil, c.errf("new session: %w", err)}
			return
		}
		sess.Stdin = stdin
		sess.Stdout = stdout
		sess.Stderr = stderr
		if err := sess.Start(cmd); err != nil {
			sess.Close()
			startc <- started{nil, c.errf("start: %w", err)}
			return
		}
		startc <- started{sess, nil}
	}()
	var st started
	select {
	case st = <-startc:
	case <-ctx.Done():
		go func() {
			if st := <-startc; st.sess != nil {
				_ = st.sess.Signal(ssh.SIGKILL)
				st.sess.Close()
			}
			c.release()
		}()
		return -1, ctx.Err()
	}
	defer c.release()
	if st.err != nil {
		return -1, st.err
	}
	sess := st.sess
	defer sess.Close()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		// Wait returns once the session's output has been copied: until
		// then x/crypto/ssh may still write into the caller's stdout and
		// stderr, which the caller reads as soon as Run returns. Bounded: a
		// stdin that blocks keeps its copy alive.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return -1, ctx.Err()
	}
	return c.exitCode(err)
}

// exitCode turns what a session's Wait returned into Run's result: the
// command's exit status, or an error when it did not exit.
func (c *Client) exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	}
	return -1, c.errf("run: %w", err)
}

// SFTP returns the connection's shared SFTP client, creating it on first use.
func (c *Client) SFTP() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	select {
	case <-c.stop:
		return nil, c.errf("sftp: connection closed")
	default:
	}
	if c.sftp != nil {
		return c.sftp, nil
	}
	s, err := sftp.NewClient(c.ssh, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, c.errf("sftp: %w", err)
	}
	c.sftp = s
	go func() {
		// Drop a dead sftp client so the next call starts a new subsystem.
		_ = s.Wait()
		c.sftpMu.Lock()
		if c.sftp == s {
			c.sftp = nil
		}
		c.sftpMu.Unlock()
	}()
	return s, nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

// WriteFile writes r to p atomically: temp file in the same directory,
// given mode before its first byte, then posix-rename over p. size may be
// -1 when unknown.
func (c *Client) WriteFile(ctx context.Context, p string, r io.Reader, size int64, mode os.FileMode) error {
	err := c.sftpDo(ctx, func(s *sftp.Client) error { return writeFile(ctx, s, p, r, size, mode) })
	if err != nil {
		return c.errf("write %s: %w", p, err)
	}
	return nil
}

// writeFile may outlive a cancelled WriteFile call; ctx is re-checked so a
// cancelled write is never renamed into place.
func writeFile(ctx context.Context, s *sftp.Client, p string, r io.Reader, size int64, mode os.FileMode) (err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".shipit-tmp-"+hex.EncodeToString(rnd[:]))
	// SFTP's open carries no mode here: the new file gets the server's
	// umask default (often 0644). O_EXCL makes it a new, empty file, whose
	// mode is set before any byte is written, so a secret is never readable
	// by others, not even half-written.
	f, err := s.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = s.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode().Perm()&^mode.Perm() != 0 {
		return fmt.Errorf("chmod %04o: the server left the file %04o", mode.Perm(), st.Mode().Perm())
	}
	cr := ctxReader{ctx, r}
	if size >= 0 {
		// A sized reader lets pkg/sftp issue concurrent writes.
		var n int64
		n, err = f.ReadFrom(&io.LimitedReader{R: cr, N: size})
		if err == nil && n != size {
			err = fmt.Errorf("short input: got %d of %d bytes", n, size)
		}
	} else {
		_, err = f.ReadFromWithConcurrency(cr, 0)
	}
	if err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	if _, ok := s.HasExtension("posix-rename@openssh.com"); ok {
		err = s.PosixRename(tmp, p)
	} else {
		err = s.Rename(tmp, p)
	}
	if err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	return nil
}

// sftpDo runs fn but returns promptly when ctx is cancelled; sftp calls
// themselves cannot be interrupted.
func (c *Client) sftpDo(ctx context.Context, fn func(*sftp.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := c.SFTP()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn(s) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exists reports whether p exists (lstat: a dangling symlink exists).
func (c *Client) Exists(ctx context.Context, p string) (bool, error) {
	var exists bool
	err := c.sftpDo(ctx, func(s *sftp.Client) error {
		_, err := s.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		exists = true
		return nil
	})
	if err != nil {
		return false, c.errf("stat %s: %w", p, err)
	}
	return exists, nil
}

// ReadFile returns the contents of the remote file p.
func (c *Client) ReadFile(ctx context.Context, p string) ([]byte, error) {
	var buf bytes.Buffer
	err := c.sftpDo(ctx, func(s *sftp.Client) error {
		f, err := s.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var b bytes.Buffer
		if _, err := f.WriteTo(&b); err != nil {
			return err
		}
		buf = b
		return nil
	})
	if err != nil {
		return nil, c.errf("read %s: %w", p, err)
	}
	return buf.Bytes(), nil
}

// ReadDir lists the names in directory p (SFTP: no command, no shell).
func (c *Client) ReadDir(ctx context.Context, p string) ([]string, error) {
	var names []string
	err := c.sftpDo(ctx, func(s *sftp.Client) error {
		infos, err := s.ReadDir(p)
		if err != nil {
			return err
		}
		for _, fi := range infos {
			names = append(names, fi.Name())
		}
		return nil
	})
	if err != nil {
		return nil, c.errf("list %s: %w", p, err)
	}
	return names, nil
}

// DialContext opens a TCP connection from the host (direct-tcpip), e.g. to
// a service that listens only on the host's loopback.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.isClosed() {
		return nil, c.errf("dial %s: connection closed", addr)
	}
	conn, err := c.ssh.DialContext(ctx, network, addr)
	if err != nil {
		return nil, c.errf("dial %s through the SSH connection: %w", addr, err)
	}
	return conn, nil
}
