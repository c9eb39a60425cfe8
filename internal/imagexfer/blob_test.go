package imagexfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// Readers follow a blob while it is written, each at its own pace, and all
// read exactly what was written; a reader waiting for more stops with its
// context.
func TestBlobFollowers(t *testing.T) {
	b, err := newBlob(t.TempDir(), "sha256:x", 1<<20)
	must(t, err)
	defer b.close()
	want := bytes.Repeat([]byte("0123456789"), 50_000)
	var wg sync.WaitGroup
	got := make([][]byte, 3)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := b.reader(context.Background())
			defer r.Close()
			got[i], _ = io.ReadAll(r)
		}()
	}
	for off := 0; off < len(want); off += 64 << 10 {
		_, err := b.Write(want[off:min(off+64<<10, len(want))])
		must(t, err)
		time.Sleep(time.Millisecond)
	}
	b.finish(nil)
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], want) {
			t.Fatalf("reader %d read %d bytes, want %d", i, len(got[i]), len(want))
		}
	}
	if n, dg, err := b.wait(context.Background()); err != nil || n != int64(len(want)) || dg != digestOf(want) {
		t.Fatalf("wait: %d %s %v", n, dg, err)
	}

	c, err := newBlob(t.TempDir(), "sha256:y", -1)
	must(t, err)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := io.ReadAll(c.reader(ctx)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting reader: %v", err)
	}
	boom := errors.New("boom")
	c.finish(boom)
	if _, err := io.ReadAll(c.reader(context.Background())); !errors.Is(err, boom) {
		t.Fatalf("reader of a failed blob: %v", err)
	}
}
