// Package remote defines the seam between deploy logic and a host connection.
// sshpool.Client implements it; unit tests use a local fake.
package remote

import (
	"context"
	"io"
	"net"
	"os"
)

// Conn is one host's connection. All methods are safe for concurrent use and
// must return promptly when ctx is cancelled.
type Conn interface {
	// Run executes cmd with the remote user's shell (sh -c semantics).
	// A non-zero exit is reported as (code, nil); err is only for transport
	// failures or cancellation.
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (code int, err error)
	// WriteFile writes r to path atomically (temp file in the same directory,
	// then rename) with mode. size may be -1 when unknown.
	WriteFile(ctx context.Context, path string, r io.Reader, size int64, mode os.FileMode) error
	// Exists reports whether path exists (lstat: a dangling symlink exists).
	Exists(ctx context.Context, path string) (bool, error)
	// Name is the host as the user wrote it, for messages and output prefixes.
	Name() string
}

// Dialer is a Conn that can open TCP connections from the host, e.g. to a
// port bound to the host's loopback (*sshpool.Client is one).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}
