package sshpool

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A secret written with mode 0600 is never readable by others, not even
// while it is being written: its temp file gets the mode before any byte.
// The writer is slow, and the temp file's mode is watched on the host
// meanwhile.
func TestWriteFileModeFromFirstByte(t *testing.T) {
	// sshd (and so its sftp server) inherits a umask that lets new files
	// be read by others, as on most hosts.
	old := syscall.Umask(0o022)
	e := newEnv(t, "")
	syscall.Umask(old)
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	c, err := e.pool(nil).Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{-1, 10 * 4096} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, ".env")
			chunk := bytes.Repeat([]byte("S"), 4096)
			pr, pw := io.Pipe()
			go func() {
				for range 10 {
					pw.Write(chunk)
					time.Sleep(50 * time.Millisecond)
				}
				pw.Close()
			}()

			var mu sync.Mutex
			var exposed []string
			seen := 0
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					select {
					case <-stop:
						return
					default:
					}
					ents, _ := os.ReadDir(dir)
					for _, ent := range ents {
						if !strings.Contains(ent.Name(), ".shipit-tmp-") {
							continue
						}
						st, err := os.Stat(filepath.Join(dir, ent.Name()))
						if err != nil || st.Size() == 0 {
							continue
						}
						mu.Lock()
						seen++
						if st.Mode().Perm() != 0o600 {
							exposed = append(exposed, fmt.Sprintf("%d bytes with mode %o", st.Size(), st.Mode().Perm()))
						}
						mu.Unlock()
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
			err := c.WriteFile(context.Background(), target, pr, size, 0o600)
			close(stop)
			<-watched
			if err != nil {
				t.Fatal(err)
			}
			if seen == 0 {
				t.Fatal("never saw the temp file with content: the test proves nothing")
			}
			if len(exposed) > 0 {
				t.Fatalf("content readable by others while written: %s", strings.Join(exposed[:1], "; "))
			}
			st, err := os.Stat(target)
			if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 10*4096 {
				t.Fatalf("target: %v, %v", st, err)
			}
		})
	}
}
