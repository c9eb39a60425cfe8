package e2e

// Fleet rollouts (issue 10) on four hosts that look like separate machines:
// batches with a wait, atomic batches, a failed batch that stops the
// rollout, a canary with a failing go/no-go check, --plan that changes
// nothing, audit lines, and a once-per-stage hook.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

type fleetApp struct {
	*app
	env   *harness.Env
	hosts []*harness.SSHD
}

func (f *fleetApp) current(h *harness.SSHD) string {
	link, _ := os.Readlink(filepath.Join(h.DeployRoot, f.name, "current"))
	return filepath.Base(link)
}

func (f *fleetApp) currents() []string {
	var out []string
	for _, h := range f.hosts {
		out = append(out, f.current(h))
	}
	return out
}

// tree hashes every file, link and mode under each host's app directory,
// plus the containers the host runs: what must not change under --plan.
func (f *fleetApp) tree(t *testing.T) string {
	var b strings.Builder
	for _, h := range f.hosts {
		root := filepath.Join(h.DeployRoot, f.name)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, _ := os.Lstat(p)
			fmt.Fprintf(&b, "%s %v", p, fi.Mode())
			if fi.Mode()&os.ModeSymlink != 0 {
				l, _ := os.Readlink(p)
				b.WriteString(" -> " + l)
			} else if fi.Mode().IsRegular() {
				c, _ := os.ReadFile(p)
				sum := sha256.Sum256(c)
				b.WriteString(" " + hex.EncodeToString(sum[:8]))
			}
			b.WriteString("\n")
			return nil
		})
		b.WriteString(f.env.Docker(t, h, "ps", "--format", "{{.ID}} {{.State}}", "--filter", "label=shipit.app="+f.name))
	}
	return b.String()
}

func TestRollouts(t *testing.T) {
	t.Parallel() // its own isolated hosts
	env := harness.New(t)
	hosts := env.StartIsolatedHosts(t, 23, 24, 25, 26)
	a := newApp(t, env, "roll", "/var/deploy", hosts, "", "")
	f := &fleetApp{app: a, env: env, hosts: hosts}
	A, B, C, D := hosts[0].Addr, hosts[1].Addr, hosts[2].Addr, hosts[3].Addr
	a.mustShipit("deploy", "-s", "production")
	v1 := f.currents()

	// 1. Batches of 2 with a wait: batch 2 starts after batch 1 and the wait.
	waitNextSecond(v1[0])
	out := a.mustShipit("deploy", "-s", "production", "--batch", "2", "--wait", "2s")
	i1 := strings.Index(out, "rollout: batch 1/2: "+A+", "+B)
	iw := strings.Index(out, "rollout: waiting 2s before batch 2")
	i2 := strings.Index(out, "rollout: batch 2/2: "+C+", "+D)
	iC := strings.Index(out, C+" | ▸ [1/12] deploy:release")
	iBdone := strings.Index(out, B+" | ✓ [12/12] deploy:cleanup")
	if i1 < 0 || iw < i1 || i2 < iw || iC < i2 || iBdone > iw {
		t.Fatalf("batches not in order (batch1 %d, B done %d, wait %d, batch2 %d, C starts %d):\n%s", i1, iBdone, iw, i2, iC, out)
	}
	v2 := f.currents()
	for i := range v2 {
		if v2[i] == v1[i] || v2[i] != v2[0] {
			t.Fatalf("after the batched deploy hosts run %v (before %v)", v2, v1)
		}
	}

	// 2. --atomic with one host's health failing: no host switched, all undone.
	failOn := func(host, step string) string {
		return fmt.Sprintf(`before(%q, function(h) if h.host == %q then error("injected failure on " .. h.host) end end)`, step, host)
	}
	a.commit(map[string]string{"www/index.html": "version 3\n", "shipit.lua": failOn(D, "deploy:health")})
	waitNextSecond(v2[0])
	out, code := a.shipit("deploy", "-s", "production", "--atomic")
	if code == 0 {
		t.Fatalf("atomic deploy with a failing host exited 0:\n%s", out)
	}
	mustContain(t, "atomic failure", out, "injected failure on "+D, "atomic rollout: host "+D+" failed before deploy:stop_previous")
	if got := f.currents(); strings.Join(got, ",") != strings.Join(v2, ",") {
		t.Fatalf("an atomic deploy with a failed host switched some: %v, want all still %v", got, v2)
	}
	for _, h := range hosts {
		if n := len(releasesOn(t, filepath.Join(h.DeployRoot, "roll"))); n != 2 {
			t.Fatalf("host %s keeps %d releases after the undone atomic deploy, want 2", h.Addr, n)
		}
	}

	// 3. Without --atomic, a failure in batch 2 stops the rollout: batch 1
	// on the new release, B (batch 2) undone, the later batches untouched;
	// the summary says so.
	a.commit(map[string]string{"shipit.lua": failOn(B, "deploy:health")})
	waitNextSecond(v2[0])
	out, code = a.shipit("deploy", "-s", "production", "--batch", "1")
	if code == 0 {
		t.Fatalf("a rollout with a failed batch exited 0:\n%s", out)
	}
	v3 := f.currents()
	if v3[0] == v2[0] || v3[1] != v2[1] || v3[2] != v2[2] || v3[3] != v2[3] {
		t.Fatalf("after a failed batch 2: hosts run %v (before %v): want A new; B, C, D as before", v3, v2)
	}
	mustContain(t, "failed batch summary", out,
		A+"  ok  release "+v3[0], "runs "+v3[0],
		B+"  FAILED  release", "runs "+v2[1],
		C+"  NOT RUN", D+"  NOT RUN", "runs "+v2[3])

	// 4. Canary: one host first, a failing go/no-go check: the canary is
	// rolled back, the rest untouched.
	a.commit(map[string]string{"shipit.lua": `task("canary", function(h) fail("error rate too high on " .. h.host) end)`})
	before := f.currents()
	waitNextSecond(v3[0])
	out, code = a.shipit("deploy", "-s", "production", "--canary", "1", "--canary-wait", "1s")
	if code == 0 {
		t.Fatalf("a canary deploy with a no-go check exited 0:\n%s", out)
	}
	mustContain(t, "canary", out, "rollout: canary: "+A+" running the new release; waiting 1s", "canary no-go", "error rate too high on "+A,
		"canary "+A+" rolled back to "+before[0])
	if got := f.currents(); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("after a no-go canary hosts run %v, want %v", got, before)
	}

	// 5. --plan changes nothing on any host.
	a.commit(map[string]string{"www/index.html": "version 4\n", "shipit.lua": `once("deploy:stop_previous", function(h) end)`})
	snap := f.tree(t)
	out = a.mustShipit("deploy", "-s", "production", "--plan", "--batch", "2")
	mustContain(t, "plan", out, "deploy plan for production (nothing was changed)", "batch 1: "+A+", "+B,
		"release     "+before[0]+" -> ", "deploy:stop_previous   once   shipit.lua:1")
	if after := f.tree(t); after != snap {
		t.Fatal("deploy --plan changed a host")
	}
	out = a.mustShipit("rollback", "-s", "production", "--plan")
	mustContain(t, "rollback plan", out, "rollback plan for production (nothing was changed)")
	if after := f.tree(t); after != snap {
		t.Fatal("rollback --plan changed a host")
	}

	// 6. Once per stage: a "migration" on the primary only, the others wait
	// at that point; its failure makes every host undo.
	mig := `once("deploy:stop_previous", function(h)
  h:run("sleep 2; echo migrated >> /var/deploy/roll/migrations.log; date +%s%N > /var/deploy/roll/migrated-at")
end)
after("deploy:stop_previous", function(h) h:run("date +%s%N > /var/deploy/roll/passed-at") end)
`
	a.commit(map[string]string{"shipit.lua": mig})
	waitNextSecond(before[0])
	a.mustShipit("deploy", "-s", "production")
	migrated := 0
	var migratedAt string
	for _, h := range hosts {
		if b, err := os.ReadFile(filepath.Join(h.DeployRoot, "roll", "migrations.log")); err == nil {
			migrated += strings.Count(string(b), "migrated")
			at, _ := os.ReadFile(filepath.Join(h.DeployRoot, "roll", "migrated-at"))
			migratedAt = strings.TrimSpace(string(at))
		}
	}
	if migrated != 1 {
		t.Fatalf("the once hook ran %d times on a 4-host stage, want 1", migrated)
	}
	for _, h := range hosts {
		passed, _ := os.ReadFile(filepath.Join(h.DeployRoot, "roll", "passed-at"))
		if p := strings.TrimSpace(string(passed)); len(p) != len(migratedAt) || p < migratedAt {
			t.Fatalf("host %s passed deploy:stop_previous at %s, before the once hook finished at %s", h.Addr, p, migratedAt)
		}
	}
	v5 := f.currents()
	a.commit(map[string]string{"shipit.lua": `once("deploy:stop_previous", function(h) error("migration failed") end)`})
	waitNextSecond(v5[0])
	out, code = a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatalf("a deploy whose once hook failed exited 0:\n%s", out)
	}
	mustContain(t, "failed once hook", out, "migration failed")
	if got := f.currents(); strings.Join(got, ",") != strings.Join(v5, ",") {
		t.Fatalf("after a failed once hook hosts run %v, want all still %v", got, v5)
	}

	// 7. Every command left an audit line on every host.
	out = a.mustShipit("audit", "-s", "production", "-n", "100")
	for _, h := range hosts {
		if n := strings.Count(out, h.Addr); n < 6 {
			t.Fatalf("host %s has %d audit lines after 7 deploys:\n%s", h.Addr, n, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var times []string
	for _, l := range lines[1:] {
		times = append(times, l[:19])
	}
	if !sort.StringsAreSorted(times) {
		t.Fatalf("audit lines are not merged by time:\n%s", out)
	}
}
