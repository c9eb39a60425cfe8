package hostlock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// FileLock holds flock(1) on file (created 0600, its directory 0700) on
// the host for a short read-modify-write, such as `shipit config set`:
// a process on the host holds it while the session's stdin is open, so a
// killed shipit or a cut connection lets it go. It waits up to wait for
// another holder. The returned func lets it go and waits for that.
func FileLock(ctx context.Context, c remote.Conn, file string, wait time.Duration) (unlock func(), err error) {
	if code, err := c.Run(ctx, "command -v flock >/dev/null", nil, io.Discard, io.Discard); err != nil {
		return nil, err
	} else if code != 0 {
		return nil, &NoFlockError{Host: c.Name()}
	}
	secs := int(wait.Seconds())
	if secs < 1 {
		secs = 1
	}
	q := shell.Quote
	// Polled with -n, once a second: busybox's flock has no -w. cat holds
	// fd 9 (and so the lock) until stdin ends.
	cmd := "mkdir -p " + q(path.Dir(file)) + " && chmod 700 " + q(path.Dir(file)) + " && umask 077 && exec 9>>" + q(file) +
		" && i=0 && until flock -n 9; do i=$((i+1)); [ $i -le " + strconv.Itoa(secs) + " ] || { echo busy; exit 75; }; sleep 1; done" +
		" && echo locked && exec cat >/dev/null"
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan struct{})
	var runErr error
	var code int
	var errb strings.Builder
	go func() {
		code, runErr = c.Run(ctx, cmd, stdinR, outW, &errb)
		outW.Close()
		close(done)
	}()
	unlock = func() {
		stdinW.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
	answer := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(outR)
		line := ""
		if s.Scan() {
			line = s.Text()
		}
		answer <- line
		io.Copy(io.Discard, outR)
	}()
	select {
	case line := <-answer:
		if line == "locked" {
			return unlock, nil
		}
		<-done
		if line == "busy" {
			return nil, fmt.Errorf("host %s: %s is still locked by another shipit after %s", c.Name(), file, time.Duration(secs)*time.Second)
		}
		if runErr == nil {
			runErr = remote.Failed(c.Name(), "lock "+file, code, errb.String(), "")
		}
		return nil, fmt.Errorf("host %s: locking %s: %w", c.Name(), file, runErr)
	case <-ctx.Done():
		unlock()
		return nil, ctx.Err()
	}
}
