package imagexfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"sync"
)

// blob is one layer compressed once into a local spool file and read by any
// number of host senders while it is still being written: a slow host never
// holds back a fast one, and memory stays flat whatever the layer size.
//
// The spool file is unlinked as soon as it is open where the OS allows it,
// so a killed shipit leaves nothing behind on the developer's disk.
type blob struct {
	diffID string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	f       *os.File
	path    string // "" once unlinked
	n       int64  // compressed bytes written so far
	rawIn   int64  // uncompressed bytes consumed so far
	rawSize int64  // uncompressed size, -1 until known
	done    bool
	err     error
	sum     hash.Hash
	digest  string // sha256 of the compressed bytes, once done
}

func newBlob(dir, diffID string, rawSize int64) (*blob, error) {
	f, err := os.CreateTemp(dir, "layer-*.gz")
	if err != nil {
		return nil, err
	}
	b := &blob{diffID: diffID, changed: make(chan struct{}), f: f, path: f.Name(), rawSize: rawSize, sum: sha256.New()}
	if os.Remove(f.Name()) == nil {
		b.path = ""
	}
	return b, nil
}

// failedBlob is a blob that could not be produced.
func failedBlob(diffID string, err error) *blob {
	b := &blob{diffID: diffID, changed: make(chan struct{}), rawSize: -1, done: true, err: err}
	return b
}

func (b *blob) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Write appends compressed bytes (the compressor's output).
func (b *blob) Write(p []byte) (int, error) {
	n, err := b.f.Write(p)
	b.mu.Lock()
	b.sum.Write(p[:n])
	b.n += int64(n)
	b.notify()
	b.mu.Unlock()
	return n, err
}

// consumed records uncompressed input, for the size estimate while compressing.
func (b *blob) consumed(n int) {
	b.mu.Lock()
	b.rawIn += int64(n)
	b.mu.Unlock()
}

func (b *blob) setRawSize(n int64) {
	b.mu.Lock()
	b.rawSize = n
	b.mu.Unlock()
}

// size is the layer's uncompressed size, or -1 if not known yet.
func (b *blob) size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rawSize
}

// finish marks the blob complete (err == nil) or failed.
func (b *blob) finish(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done, b.err = true, err
	if err == nil {
		b.digest = "sha256:" + hex.EncodeToString(b.sum.Sum(nil))
	}
	b.notify()
}

// state returns the compressed bytes so far, whether it is complete, and
// the expected total (exact when done, else estimated from the ratio so far).
func (b *blob) state() (n int64, done bool, err error, estimate int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	estimate = b.n
	switch {
	case b.done:
	case b.rawSize > 0 && b.rawIn > 1<<20:
		estimate = int64(float64(b.rawSize) * float64(b.n) / float64(b.rawIn))
	case b.rawSize > 0:
		estimate = b.rawSize / 2 // a typical layer before any output exists
	}
	return b.n, b.done, b.err, max(estimate, b.n)
}

// wait blocks until the blob is complete and returns its size and digest.
func (b *blob) wait(ctx context.Context) (int64, string, error) {
	for {
		b.mu.Lock()
		if b.done {
			n, d, err := b.n, b.digest, b.err
			b.mu.Unlock()
			return n, d, err
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, "", ctx.Err()
		}
	}
}

// reader returns a reader of the compressed bytes from the start that
// waits for more until the blob is complete.
func (b *blob) reader(ctx context.Context) io.ReadCloser {
	return &follower{b: b, ctx: ctx}
}

type follower struct {
	b   *blob
	ctx context.Context
	off int64
}

var errBlobClosed = errors.New("imagexfer: layer spool closed")

func (r *follower) Read(p []byte) (int, error) {
	b := r.b
	for {
		b.mu.Lock()
		n, done, err, f, ch := b.n, b.done, b.err, b.f, b.changed
		b.mu.Unlock()
		if done && err != nil {
			return 0, err
		}
		if r.off < n {
			if f == nil {
				return 0, errBlobClosed
			}
			want := min(int64(len(p)), n-r.off)
			m, rerr := f.ReadAt(p[:want], r.off)
			r.off += int64(m)
			if m > 0 {
				return m, nil
			}
			if rerr != nil && rerr != io.EOF {
				return 0, rerr
			}
			continue
		}
		if done {
			return 0, io.EOF
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *follower) Close() error { return nil }

// close releases the spool file; followers still reading get an error.
func (b *blob) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	if b.path != "" {
		os.Remove(b.path)
		b.path = ""
	}
	if !b.done {
		b.done, b.err = true, errBlobClosed
	}
	b.notify()
}
