package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
	"github.com/shipit-dev/shipit/internal/audit"
	"github.com/shipit-dev/shipit/sshpool"
)

// Entries appended with the Go API over real SSH to two hosts (each with
// its own /var/deploy) come back from `shipit audit` merged by time, as a
// table or JSON lines, narrowed by -n and --hosts.
func TestAuditMergesHostsByTime(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	one := env.StartSSHD(t, harness.SSHDOpts{ListenIP: "127.0.0.41", Isolated: true})
	two := env.StartSSHD(t, harness.SSHDOpts{ListenIP: "127.0.0.42", Isolated: true})
	a := newApp(t, env, "aud", "/var/deploy", []*harness.SSHD{one, two}, "", "")
	appPath := "/var/deploy/aud"
	for _, h := range []*harness.SSHD{one, two} {
		if err := os.MkdirAll(filepath.Join(h.DeployRoot, "aud"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing yet.
	out := a.mustShipit("audit", "-s", "production")
	mustContain(t, "empty audit", out, "no audit entries on the 2 selected host(s) of production yet")

	pool := sshpool.New(sshpool.Config{KnownHostsFiles: []string{env.KnownHosts}, IdentityFiles: []string{env.ClientKey}, SSHConfigPath: env.SSHConfig})
	t.Cleanup(func() { pool.Close() })
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	// r1, r3, r5 on host one; r2, r4 on host two: only time orders them.
	plan := []struct {
		h   *harness.SSHD
		rel string
		res audit.Result
		err string
	}{{one, "r1", audit.OK, ""}, {two, "r2", audit.OK, ""}, {one, "r3", audit.Failed, "health check failed"},
		{two, "r4", audit.Interrupted, "context canceled"}, {one, "r5", audit.OK, ""}}
	var wg sync.WaitGroup
	for _, h := range []*harness.SSHD{one, two} {
		conn, err := pool.Get(ctx, sshpool.Target{Host: h.Host, Port: h.Port, User: "root"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { // both hosts at once, each in its own order
			defer wg.Done()
			for i, p := range plan {
				if p.h != h {
					continue
				}
				e := audit.Entry{Time: t0.Add(time.Duration(i) * time.Second), Command: "deploy", Stage: "production", Host: h.Addr,
					User: "ann@laptop", Author: "Ann Lee <ann@example.com>", Release: p.rel, PreviousRelease: "r0",
					GitSHA: "0123456789abcdef0123456789abcdef01234567", Result: p.res, Error: p.err, Duration: 1500 * time.Millisecond}
				if err := audit.Append(ctx, conn, appPath, e); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, h := range []*harness.SSHD{one, two} {
		if m := modeOf(t, filepath.Join(h.DeployRoot, "aud", "audit.log")); m != 0o600 {
			t.Fatalf("%s: audit.log mode %o", h.Addr, m)
		}
	}

	out = a.mustShipit("audit", "-s", "production")
	if got := releasesIn(out); got != "r1 r2 r3 r4 r5" {
		t.Fatalf("table order %q:\n%s", got, out)
	}
	mustContain(t, "table", out, "TIME (UTC)", "WHO")
	rows := strings.Split(out, "\n")
	mustContain(t, "r3's row", rows[3], t0.Add(2*time.Second).Format("2006-01-02 15:04:05"), one.Addr, "deploy", "failed", "r3",
		"0123456789ab", "Ann Lee (ann@laptop)", "1.5s", "health check failed")
	mustContain(t, "r4's row", rows[4], two.Addr, "interrupted", "context canceled")

	out = a.mustShipit("audit", "-s", "production", "-n", "3")
	if got := releasesIn(out); got != "r3 r4 r5" {
		t.Fatalf("-n 3 gave %q:\n%s", got, out)
	}

	out = a.mustShipit("audit", "-s", "production", "-n", "0", "--json")
	var rels []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		rels = append(rels, e.Release)
		if e.GitSHA == "" || e.PreviousRelease != "r0" || e.Duration != 1500*time.Millisecond {
			t.Fatalf("--json entry %+v", e)
		}
	}
	if strings.Join(rels, " ") != "r1 r2 r3 r4 r5" {
		t.Fatalf("--json order %v", rels)
	}

	out = a.mustShipit("audit", "-s", "production", "--hosts", two.Addr)
	if got := releasesIn(out); got != "r2 r4" || strings.Contains(out, one.Addr) {
		t.Fatalf("--hosts %s gave %q:\n%s", two.Addr, got, out)
	}
}

var releaseCol = regexp.MustCompile(`\s(r\d)\s`)

func releasesIn(out string) string {
	var rels []string
	for _, l := range strings.Split(out, "\n") {
		if m := releaseCol.FindStringSubmatch(l); m != nil {
			rels = append(rels, m[1])
		}
	}
	return strings.Join(rels, " ")
}
