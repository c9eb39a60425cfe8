package text

import (
	"bytes"
	"sync"
)

// Lines is an io.Writer that calls Emit once per complete line (without
// "\n" or "\r\n"). It is safe for concurrent writers (stdout and stderr of
// one command share it) and drops writes after Close, because a cancelled
// SSH session may still copy into it after Run returned.
type Lines struct {
	Emit func(string)

	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (w *Lines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.buf.Next(i + 1)
		w.Emit(string(bytes.TrimRight(line, "\r\n")))
	}
}

// Close emits a last unterminated line and drops later writes.
func (w *Lines) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.Emit(w.buf.String())
		w.buf.Reset()
	}
	w.closed = true
	return nil
}
