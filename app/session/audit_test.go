package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/internal/audit"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// localDialer reaches every "host" on this machine, each with its own
// directory standing for its filesystem root under deploy_to.
type localDialer struct{ roots map[string]string }

func (d localDialer) Dial(ctx context.Context, t sshpool.Target) (remote.Conn, error) {
	root, ok := d.roots[t.Host]
	if !ok {
		return nil, errors.New("unreachable")
	}
	return &localconn.Conn{HostName: t.Host, Dir: root}, nil
}

// Record writes one entry per host result, with the command, the
// outcome (redacted) and the release; an interrupted run is recorded as
// such; an unreachable host gets a warning, not a failure.
func TestAuditRecord(t *testing.T) {
	deployTo := t.TempDir()
	hosts := []orchestrator.Host{{Name: "h1", Target: sshpool.Target{Host: "h1"}}, {Name: "h2", Target: sshpool.Target{Host: "h2"}}, {Name: "h3", Target: sshpool.Target{Host: "h3"}}}
	// h1 and h2 share deploy_to here: the app path tells their logs apart.
	cfg := &config.Config{App: config.App{Name: "demo"}, Deploy: config.Deploy{DeployTo: deployTo}}
	if err := os.MkdirAll(cfg.AppPath(), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printer := ui.New(&out, false, []string{"h1", "h2", "h3"})
	redact := func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	s := &Session{Proj: &Project{Cfg: cfg, Dir: t.TempDir()}, Out: printer,
		Env:   &runtime.Env{Config: cfg, Stage: "production", Redact: redact},
		Fleet: &orchestrator.Fleet{Hosts: hosts, Dialer: localDialer{roots: map[string]string{"h1": "/", "h2": "/"}}, Sink: printer}}
	start := time.Now().Add(-3 * time.Second)
	s.Record(context.Background(), "deploy", start, []orchestrator.Result{
		{Host: "h1", Release: "r2", Elapsed: 2500 * time.Millisecond},
		{Host: "h2", Release: "r2", Err: errors.New("host h2: password hunter2 refused\n  | details")},
		{Host: "h3", Release: "r2", Err: errors.New("unreachable")},
	})
	got, err := audit.Read(context.Background(), &localconn.Conn{HostName: "x", Dir: "/"}, cfg.AppPath(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("entries: %+v", got)
	}
	byHost := map[string]audit.Entry{}
	for _, e := range got {
		byHost[e.Host] = e
	}
	ok, failed := byHost["h1"], byHost["h2"]
	if ok.Command != "deploy" || ok.Stage != "production" || ok.Result != audit.OK || ok.Release != "r2" ||
		ok.Duration != 2500*time.Millisecond || !strings.Contains(ok.User, "@") {
		t.Fatalf("ok entry: %+v", ok)
	}
	if failed.Result != audit.Failed || failed.Error != "host h2: password *** refused" {
		t.Fatalf("failed entry: %+v", failed)
	}
	if !strings.Contains(out.String(), "h3 | ! audit log not written: unreachable") {
		t.Fatalf("output:\n%s", out.String())
	}

	// After Ctrl-C, the hosts that failed were interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Record(ctx, "rollback", start, []orchestrator.Result{{Host: "h1", Err: fmt.Errorf("step rollback:switch: %w", errors.New("signal"))}})
	got, _ = audit.Read(context.Background(), &localconn.Conn{HostName: "x", Dir: "/"}, filepath.Join(deployTo, "demo"), 1)
	if len(got) != 1 || got[0].Command != "rollback" || got[0].Result != audit.Interrupted {
		t.Fatalf("after Ctrl-C: %+v", got)
	}
}
