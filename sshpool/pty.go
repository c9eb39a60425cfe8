package sshpool

import (
	"context"
	"io"

	"golang.org/x/crypto/ssh"
)

// RunPTY runs cmd on a remote pseudo-terminal of size w x h (columns, rows)
// with stdin and stdout wired to the caller's terminal, for interactive
// commands (`shipit app exec -i`). With a PTY the remote side merges stderr
// into stdout. resize, if not nil, delivers new sizes while it runs. A
// non-zero exit is (code, nil).
func (c *Client) RunPTY(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer, term string, w, h int, resize <-chan [2]int) (int, error) {
	if err := c.acquire(ctx); err != nil {
		return -1, c.errf("run: %w", err)
	}
	defer c.release()
	sess, err := c.ssh.NewSession()
	if err != nil {
		return -1, c.errf("new session: %w", err)
	}
	defer sess.Close()
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(term, h, w, modes); err != nil {
		return -1, c.errf("request pty: %w", err)
	}
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stdout
	if err := sess.Start(cmd); err != nil {
		return -1, c.errf("start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	for {
		select {
		case err = <-done:
			return c.exitCode(err)
		case sz := <-resize:
			_ = sess.WindowChange(sz[1], sz[0])
		case <-ctx.Done():
			_ = sess.Signal(ssh.SIGKILL)
			sess.Close()
			return -1, ctx.Err()
		}
	}
}
