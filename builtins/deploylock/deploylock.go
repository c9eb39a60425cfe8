// Package deploylock keeps two deploys off one host at once:
// require("shipit.deploylock").acquire(h). The lock is a flock(1) held by
// a remote process that lives as long as shipit's SSH session, so a killed
// shipit or a dropped connection can never leave a stale lock behind.
package deploylock

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.deploylock", Open: open,
		Doc: "acquire(h, what) takes the host's deploy lock until this host's run ends; raises when another deploy holds it"})
}

// BusyError means another shipit holds the lock.
type BusyError struct{ Host, Holder string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("host %s: another deploy is running (%s)", e.Host, e.Holder)
}

func (e *BusyError) Hint() string {
	return "wait for it to finish; the lock is released as soon as that shipit exits or loses its connection"
}

// Acquire takes the lock on h until h's run ends.
func Acquire(h *runtime.Host, what string) error {
	lockPath := path.Join(h.AppPath, ".deploy.lock")
	info := path.Join(h.AppPath, ".deploy.info")
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s by %s@%s since %s", what, os.Getenv("USER"), host, time.Now().UTC().Format(time.RFC3339))
	cmd := fmt.Sprintf("mkdir -p %s && exec 9>>%s && if ! flock -n 9; then echo busy; cat %s 2>/dev/null; exit 75; fi; printf '%%s\\n' %s > %s; echo locked; exec cat >/dev/null",
		shell.Quote(h.AppPath), shell.Quote(lockPath), shell.Quote(info), shell.Quote(holder), shell.Quote(info))
	if r, _ := h.Exec("command -v flock", true, runtime.RunOpts{Quiet: true}); r.Code != 0 {
		h.Emit(runtime.Event{Kind: runtime.Warn, Text: "flock(1) not found on host: concurrent deploys are not prevented"})
		return nil
	}
	stdinR, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	ctx := h.Context()
	go func() {
		_, err := h.Conn.Run(ctx, cmd, stdinR, outW, io.Discard)
		outW.Close()
		done <- err
	}()
	sc := bufio.NewScanner(outR)
	if !sc.Scan() {
		stdinW.Close()
		if err := <-done; err != nil {
			return err
		}
		return fmt.Errorf("host %s: deploy lock: no answer from the host", h.Name)
	}
	switch sc.Text() {
	case "locked":
		go io.Copy(io.Discard, outR)
		h.Defer(func() {
			stdinW.Close()
			<-done
		})
		return nil
	case "busy":
		var rest []string
		for sc.Scan() {
			rest = append(rest, sc.Text())
		}
		stdinW.Close()
		<-done
		return &BusyError{Host: h.Name, Holder: strings.Join(rest, " ")}
	}
	stdinW.Close()
	<-done
	return fmt.Errorf("host %s: deploy lock: unexpected answer %q", h.Name, sc.Text())
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"acquire": func(L *lua.LState) int {
			if err := Acquire(runtime.CheckHost(L, 1), L.OptString(2, "deploy")); err != nil {
				return runtime.Raise(L, err)
			}
			return 0
		},
	})
}
