// Package hostlock keeps two deploys off one host at once. The lock is a
// flock(1) held by a remote process that lives as long as shipit's SSH
// session, so a killed shipit or a dropped connection can never leave a
// stale lock behind.
package hostlock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// BusyError means another shipit holds the lock.
type BusyError struct{ Host, Holder string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("host %s: another deploy is running (%s)", e.Host, e.Holder)
}

func (e *BusyError) Hint() string {
	return "wait for it to finish; the lock is released as soon as that shipit exits or loses its connection"
}

// Lock is a held lock; Release lets it go.
type Lock struct {
	stdin io.Closer
	done  chan error
}

// Release ends the holder and waits for it.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.stdin.Close()
	<-l.done
}

// Acquire takes the lock of the app at appPath; holder says who holds it
// (shown to a second shipit). A nil *Lock and nil error mean the host has
// no flock(1): the caller should warn that deploys are not serialised.
func Acquire(ctx context.Context, c remote.Conn, appPath, holder string) (*Lock, error) {
	if code, err := c.Run(ctx, "command -v flock", nil, io.Discard, io.Discard); err != nil {
		return nil, err
	} else if code != 0 {
		return nil, nil
	}
	lockPath := path.Join(appPath, ".deploy.lock")
	info := path.Join(appPath, ".deploy.info")
	cmd := fmt.Sprintf("mkdir -p %s && exec 9>>%s && if ! flock -n 9; then echo busy; cat %s 2>/dev/null; exit 75; fi; printf '%%s\\n' %s > %s; echo locked; exec cat >/dev/null",
		shell.Quote(appPath), shell.Quote(lockPath), shell.Quote(info), shell.Quote(holder), shell.Quote(info))
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, cmd, stdinR, outW, io.Discard)
		outW.Close()
		done <- err
	}()
	sc := bufio.NewScanner(outR)
	if !sc.Scan() {
		stdinW.Close()
		if err := <-done; err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("host %s: deploy lock: no answer from the host", c.Name())
	}
	switch sc.Text() {
	case "locked":
		go io.Copy(io.Discard, outR)
		return &Lock{stdin: stdinW, done: done}, nil
	case "busy":
		var rest []string
		for sc.Scan() {
			rest = append(rest, sc.Text())
		}
		stdinW.Close()
		<-done
		return nil, &BusyError{Host: c.Name(), Holder: strings.Join(rest, " ")}
	}
	stdinW.Close()
	<-done
	return nil, fmt.Errorf("host %s: deploy lock: unexpected answer %q", c.Name(), sc.Text())
}
