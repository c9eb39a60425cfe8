// Package hostlock is require("shipit.hostlock"): the per-host deploy lock
// and the journal that lets the host settle an interrupted change itself.
package hostlock

import (
	"context"
	"errors"
	"math"
	"os"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/audit"
	"github.com/shipit-dev/shipit/internal/hostlock"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.hostlock", Open: open,
		Doc: "The per-host lock (one deploy, rollback or setup of an app at a time) and the journal of the change in flight.",
		Funcs: []runtime.Func{
			{Name: "acquire", Args: "h: shipit.Host, what?: string",
				Doc: "Takes the app's lock on the host until this host's run ends, after the host settled what an earlier run left; waits up to --lock-wait, else raises naming the holder."},
			{Name: "begin", Args: "h: shipit.Host, meta: table<string, string>",
				Doc: "Starts the journal of the change (meta: op = \"deploy\"|\"rollback\", compose = the compose command): from now on every contract mark is written to the host, and the host settles the change itself if shipit goes away."},
			{Name: "settle", Args: "h: shipit.Host",
				Doc: "Has the host settle the journal now: undo the change, or complete it when it is past its point of no return."},
		}})
}

// lockSlot holds the host's deploy lock once acquire took it.
var lockSlot = runtime.NewHostSlot[*hostlock.Lock]("hostlock.lock")

func lockOf(L *lua.LState, h *runtime.Host) *hostlock.Lock {
	l, err := lockSlot.Get(h, "", func() (*hostlock.Lock, error) { return nil, errNoLock })
	if err != nil {
		runtime.Raise(L, err)
		return nil
	}
	return l
}

func acquire(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	what := L.OptString(2, "deploy")
	env := runtime.StateOf(L).Env
	var lock *hostlock.Lock
	_, err := lockSlot.Get(h, "", func() (*hostlock.Lock, error) {
		l, err := hostlock.Acquire(h.Context(), h.Conn, hostlock.Options{
			AppPath: h.AppPath, App: h.App, Stage: h.Stage, Wait: env.LockWait,
			Holder: hostlock.Holder{User: audit.LocalUser(), PID: os.Getpid(), Command: what, Release: h.Release, Since: time.Now()},
			Logf:   func(s string) { h.Emit(runtime.Event{Kind: runtime.Info, Text: s}) },
		})
		lock = l
		return l, err
	})
	if err != nil {
		return runtime.Raise(L, err)
	}
	if lock == nil {
		return 0 // already held by this run
	}
	released := make(chan struct{})
	go func() {
		select {
		case <-lock.Lost():
			// Said by the holder before it ends: what the host did.
			lock.WaitOutcome(15 * time.Second)
			h.Abort(lock.LostError())
		case <-released:
		}
	}()
	// From now on every remote operation of this run is refused once the
	// holder gave it up, or once shipit lost the holder.
	h.SetGuard(lock.Guard(), lock.Check)
	h.SetWriteGuard(lock.Verify)
	h.Defer(func() {
		close(released)
		h.SetGuard("", nil)
		h.SetWriteGuard(nil)
		h.SetJournal(nil)
		// A fresh context: the lock is let go only after the host settled,
		// Ctrl-C or not.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		lock.Release(ctx, !h.Failed())
	})
	return 0
}

func begin(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	t := L.CheckTable(2)
	m := map[string]string{}
	t.ForEach(func(k, v lua.LValue) { m[k.String()] = v.String() })
	// The host drains and stops with the app's own timeouts when it
	// settles the change without shipit (host.sh: J_DRAIN_TIMEOUT,
	// J_STOP_TIMEOUT, whole seconds).
	hs := runtime.StateOf(L).Env.Health()
	for k, d := range map[string]time.Duration{"drain_timeout": hs.DrainTimeout, "stop_timeout": hs.StopTimeout} {
		if _, ok := m[k]; !ok {
			m[k] = strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
		}
	}
	lock := lockOf(L, h)
	if err := lock.Begin(h.Context(), m, runtime.StateOf(L).StateSnapshot()); err != nil {
		return runtime.Raise(L, err)
	}
	h.SetJournal(lock)
	return 0
}

func settle(L *lua.LState) int {
	h := runtime.CheckHost(L, 1)
	lock, err := lockSlot.Get(h, "", func() (*hostlock.Lock, error) { return nil, errNoLock })
	if err != nil {
		return 0 // the run failed before it took the lock: nothing to settle
	}
	h.SetJournal(nil)
	err = lock.Settle(h.Context())
	var lost *hostlock.LostError
	if errors.As(err, &lost) {
		// The lock is gone: the host settles (or settled) the run itself.
		text := "the deploy lock is gone: the host settles this run by itself (`shipit lock status` shows when it is done)"
		if lost.Outcome != "" {
			text = "the host settled this run without shipit: it " + lost.Outcome + "; nothing else is needed"
		}
		h.Emit(runtime.Event{Kind: runtime.Warn, Text: text})
		return 0
	}
	if err != nil {
		return runtime.Raise(L, err)
	}
	return 0
}

var errNoLock = errors.New("no lock: call hostlock.acquire(h) first")

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"acquire": acquire, "begin": begin, "settle": settle})
}
