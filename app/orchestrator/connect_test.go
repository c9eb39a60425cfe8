package orchestrator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// refusingDialer fails every dial and counts them, per host.
type refusingDialer struct {
	mu    sync.Mutex
	dials map[string]int
}

func (d *refusingDialer) Dial(ctx context.Context, t sshpool.Target) (remote.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials[t.Name]++
	return nil, errors.New("dial tcp " + t.Name + ": connect: connection refused")
}

// A host that cannot be reached is reported once, its error says so and
// has a hint, and ReadCurrent does not dial it again (no "runs ?").
func TestUnreachableHostIsDialedOnce(t *testing.T) {
	d := &refusingDialer{dials: map[string]int{}}
	var events []runtime.Event
	var mu sync.Mutex
	sink := runtime.SinkFunc(func(e runtime.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	f := &Fleet{Hosts: []Host{{Name: "a", Target: sshpool.Target{Name: "a"}}}, Dialer: d, Sink: sink}
	results := f.Each(context.Background(), func(context.Context, Host, remote.Conn) Result { return Result{} })
	f.ReadCurrent(context.Background(), "/srv/app", results)
	if d.dials["a"] != 1 {
		t.Fatalf("%d dials, want 1", d.dials["a"])
	}
	if len(events) != 1 || events[0].Step != "connect" {
		t.Fatalf("events %+v, want one connect failure", events)
	}
	err := results[0].Err
	if !Unreachable(err) || Unreachable(errors.New("other")) {
		t.Fatalf("Unreachable(%v) = false", err)
	}
	if results[0].Current != "" {
		t.Fatalf("Current = %q for a host never reached", results[0].Current)
	}
	if err.Error() != "dial tcp a: connect: connection refused" {
		t.Fatalf("message changed: %q", err.Error())
	}
	if h := hint.Of(Failed(results)); !strings.HasPrefix(h, "check the host address and port") {
		t.Fatalf("hint %q", h)
	}
}

// The connection's own hint (a host key's) wins over the generic one.
func TestConnectHintKeepsTheErrorsOwn(t *testing.T) {
	own := hint.New("host key unknown", "add it with ssh-keyscan")
	if h := ConnectHint(own); h != "add it with ssh-keyscan" {
		t.Fatalf("hint %q", h)
	}
	if h := ConnectHint(errors.New("ssh: handshake failed: ssh: unable to authenticate")); !strings.Contains(h, "authorized_keys") {
		t.Fatalf("auth hint %q", h)
	}
}
