package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

var handshakeRe = regexp.MustCompile(`ssh handshakes (\S+): (\d+)`)

// BenchmarkDeployFanOut measures a deploy to 1 host (the baseline) and to 8
// isolated hosts in the same run: wall time, the SSH handshakes each host
// took, shipit's own CPU per host and its own time (ownSteps) per host. A
// step where shipit serializes hosts shows as a ratio near 8. It runs
// twice: with the isolated hosts' root .bashrc a fresh Debian's (their
// default), then with this machine's, whose start-up (pyenv init) bash runs
// for every SSH session: 8 hosts on this machine's cores pay it for all.
// With SHIPIT_BENCH_BASELINE set to a commit, a shipit built from it
// deploys the 8 hosts first, for a ratio. Run with `make bench`; it prints,
// never asserts timings.
func BenchmarkDeployFanOut(b *testing.B) {
	env := harness.New(b)
	hosts := env.StartIsolatedHosts(b, 1, 2, 3, 4, 5, 6, 7, 8)
	type run struct {
		wall, cpu time.Duration
		own       []time.Duration
		hsk       map[string]string
	}
	deploy := func(name, bin string, hs []*harness.SSHD) run {
		a := newApp(b, env, name, "/var/deploy", hs, "", "")
		a.bin = bin
		args := []string{"--ssh-stats", "deploy", "-s", "production"}
		if os.Getenv("SHIPIT_BENCH_TRACE") != "" {
			args = append([]string{"--trace"}, args...)
		}
		cmd := a.shipitCmd(args...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		el := time.Since(start)
		if err != nil {
			b.Fatalf("deploy to %d hosts: %v\n%s", len(hs), err, out)
		}
		if d := os.Getenv("SHIPIT_BENCH_TRACE"); d != "" {
			// Where each host's time went, for reading after the run.
			_ = os.WriteFile(filepath.Join(d, name+".txt"), out, 0o644)
		}
		if len(hs) > 1 {
			// Which steps grow with the fleet: each host's step line.
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, " · ") {
					fmt.Println("  " + strings.TrimSpace(l))
				}
			}
		}
		// Its containers go: each one's health checks would load the
		// hosts for the deploys measured after it.
		for _, h := range hs {
			if ids := strings.Fields(env.Docker(b, h, "ps", "-aq", "--filter", "label=shipit.app="+name)); len(ids) > 0 {
				env.Docker(b, h, append([]string{"rm", "-f"}, ids...)...)
			}
		}
		r := run{wall: el, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), own: ownTimes(string(out)), hsk: map[string]string{}}
		for _, m := range handshakeRe.FindAllStringSubmatch(string(out), -1) {
			r.hsk[m[1]] = m[2]
		}
		return r
	}
	bin := benchShipit(b) // as users get it, not the tests' -race build
	var baseline string
	if c := os.Getenv("SHIPIT_BENCH_BASELINE"); c != "" {
		baseline = buildBaseline(b, c)
	}
	shells := []struct {
		name    string
		machine bool
	}{{"a fresh Debian root .bashrc", false}, {"this machine's root .bashrc (pyenv init)", true}}
	for i := 0; i < b.N; i++ {
		for si, sh := range shells {
			for _, h := range hosts {
				env.MachineBashrc(b, h, sh.machine)
			}
			fmt.Printf("--- hosts with %s\n", sh.name)
			var base, eight run
			one := deploy(fmt.Sprintf("bench1x%d%d", i, si), bin, hosts[:1])
			// Which build goes first alternates: neither always gets the
			// fresher hosts.
			if baseline != "" && i%2 == 0 {
				base = deploy(fmt.Sprintf("bench8b%d%d", i, si), baseline, hosts)
			}
			eight = deploy(fmt.Sprintf("bench8x%d%d", i, si), bin, hosts)
			if baseline != "" && i%2 == 1 {
				base = deploy(fmt.Sprintf("bench8b%d%d", i, si), baseline, hosts)
			}
			if si == 0 {
				b.ReportMetric(one.wall.Seconds(), "s/deploy-1host")
				b.ReportMetric(eight.wall.Seconds(), "s/deploy-8hosts")
				b.ReportMetric(eight.wall.Seconds()/one.wall.Seconds(), "ratio-8hosts/1host")
			}
			fmt.Printf("deploy 1 host:  %6.2fs (baseline), shipit CPU %v\n", one.wall.Seconds(), one.cpu.Round(time.Millisecond))
			fmt.Printf("deploy 8 hosts: %6.2fs = %.2fx the 1-host baseline (8.00x would be serial), shipit CPU %v = %v per host\n",
				eight.wall.Seconds(), eight.wall.Seconds()/one.wall.Seconds(), eight.cpu.Round(time.Millisecond), (eight.cpu / 8).Round(time.Millisecond))
			fmt.Printf("shipit's own time per host (steps %s): 1 host %s; 8 hosts %s\n", strings.Join(ownSteps, "+"), fmtOwn(one.own), fmtOwn(eight.own))
			if baseline != "" {
				fmt.Printf("8 hosts, shipit %s: deploy %.2fs, own time per host %s; this tree's mean own time = %.2fx, deploy = %.2fx\n",
					os.Getenv("SHIPIT_BENCH_BASELINE"), base.wall.Seconds(), fmtOwn(base.own), meanOf(eight.own).Seconds()/meanOf(base.own).Seconds(), eight.wall.Seconds()/base.wall.Seconds())
			}
			fmt.Printf("ssh handshakes per host, 1-host deploy: %s\n", fmtMap(one.hsk))
			fmt.Printf("ssh handshakes per host, 8-host deploy: %s\n", fmtMap(eight.hsk))
		}
	}
}

func meanOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// BenchmarkDeployUnderLoad deploys the graceful app through the real
// Traefik while requests flow, packaged with busybox and FROM scratch (the
// health probe is shipit's in both), and prints for each: requests sent and
// failed, latency during the switch against before it, the seconds from
// "new release healthy" to "routed" and to "old release stopped", and the
// drain; then the two side by side.
func BenchmarkDeployUnderLoad(b *testing.B) {
	results := map[harness.ImageKind]switchTimes{}
	kinds := []harness.ImageKind{harness.Busybox, harness.Scratch}
	for _, k := range kinds {
		b.Run(string(k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				results[k] = benchUnderLoad(b, k)
			}
		})
	}
	if len(results) == len(kinds) {
		bb, sc := results[harness.Busybox], results[harness.Scratch]
		fmt.Printf("switch times, busybox app (baseline) vs scratch app, same run:\n")
		fmt.Printf("  healthy -> routed:      %.2fs vs %.2fs (%.2fx)\n", bb.routed, sc.routed, sc.routed/max(bb.routed, 0.001))
		fmt.Printf("  drain of the old one:   %.2fs vs %.2fs (%.2fx)\n", bb.drain, sc.drain, sc.drain/max(bb.drain, 0.001))
		fmt.Printf("  healthy -> old stopped: %.2fs vs %.2fs (%.2fx)\n", bb.stopped, sc.stopped, sc.stopped/max(bb.stopped, 0.001))
	}
}

// switchTimes are seconds from the new release's first healthy probe.
type switchTimes struct{ routed, drain, stopped float64 }

var drainedRe = regexp.MustCompile(`drained \S+ in ([0-9.]+)(m?s)`)

func benchUnderLoad(b *testing.B, kind harness.ImageKind) switchTimes {
	env := harness.New(b)
	name := "zdb" + strings.ReplaceAll(string(kind), "-", "")
	r := newRoutedAppOf(b, env, zdIsolatedHost, name, kind, func(addr, domain string) string { return zdToml(name, addr, domain, "") },
		map[string]string{"shipit.lua": `after("deploy:health", function(h) h:run("date +%s.%N > /var/deploy/` + name + `/.routed-at") end)
after("deploy:stop_previous", function(h) h:run("date +%s.%N > /var/deploy/` + name + `/.stopped-at") end)
`})
	a, host, url, domain := r.app, r.host, r.url, r.domain

	load := harness.StartLoad(b, harness.LoadOpts{URL: url, Host: domain})
	time.Sleep(5 * time.Second)
	a.commit(map[string]string{"version.txt": "2\n"})
	start := time.Now()
	out := a.mustShipit("deploy", "-s", "production")
	end := time.Now()
	time.Sleep(time.Second)
	rep := load.Stop()
	before := rep.Window(rep.From, start)
	during := rep.Window(start, end)
	readAt := func(f string) time.Time {
		raw, err := os.ReadFile(filepath.Join(host.DeployRoot, name, f))
		if err != nil {
			b.Fatal(err)
		}
		sec, _ := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		return time.Unix(0, int64(sec*1e9))
	}
	// Healthy: the new web container's first passing probe (Docker's log).
	l, _ := readLock(b, filepath.Join(host.DeployRoot, name))
	ids := webContainers(b, env, host, name, l.CurrentRelease)
	healthy := firstHealthy(b, env, host, ids, start, end)
	routed, stopped := readAt(".routed-at"), readAt(".stopped-at")
	drain := -1.0
	if m := drainedRe.FindStringSubmatch(out); m != nil {
		drain, _ = strconv.ParseFloat(m[1], 64)
		if m[2] == "ms" {
			drain /= 1000
		}
	}
	fmt.Printf("deploy of the %s app under load through Traefik: %d requests sent, %d failed; slow %d/%d completed\n",
		kind, rep.Sent, rep.Failed, rep.SlowCompleted, rep.SlowStarted)
	fmt.Printf("  latency before the deploy: p50 %v p99 %v (%d requests)\n", before.P50.Round(100*time.Microsecond), before.P99.Round(100*time.Microsecond), before.Sent)
	fmt.Printf("  latency during the deploy: p50 %v p99 %v (%d requests); ratio p99 %.2fx\n", during.P50.Round(100*time.Microsecond),
		during.P99.Round(100*time.Microsecond), during.Sent, float64(during.P99)/float64(max(before.P99, 1)))
	fmt.Printf("  new release healthy -> routed by Traefik: %.2fs; drain %.2fs; -> old release stopped: %.2fs\n",
		routed.Sub(healthy).Seconds(), drain, stopped.Sub(healthy).Seconds())
	b.ReportMetric(float64(rep.Failed), "failed")
	b.ReportMetric(stopped.Sub(healthy).Seconds(), "s/healthy-to-old-stopped")
	return switchTimes{routed: routed.Sub(healthy).Seconds(), drain: drain, stopped: stopped.Sub(healthy).Seconds()}
}

// firstHealthy is when Docker first reported one of the containers healthy
// (its health_status events: the probe log keeps only the last five).
func firstHealthy(b *testing.B, env *harness.Env, host *harness.SSHD, ids []string, since, until time.Time) time.Time {
	var first time.Time
	for _, id := range ids {
		out := env.Docker(b, host, "events", "--since", strconv.FormatInt(since.Unix()-1, 10), "--until", strconv.FormatInt(until.Unix()+1, 10),
			"--filter", "container="+id, "--filter", "event=health_status", "--format", "{{.TimeNano}} {{.Status}}")
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || !strings.Contains(l, "healthy") || strings.Contains(l, "unhealthy") {
				continue
			}
			n, _ := strconv.ParseInt(f[0], 10, 64)
			if at := time.Unix(0, n); first.IsZero() || at.Before(first) {
				first = at
			}
		}
	}
	if first.IsZero() {
		b.Fatal("no health_status: healthy event for the new release")
	}
	return first
}

func fmtMap(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// ownTimes is shipit's own time (ownSteps) of each host's step line.
func ownTimes(out string) []time.Duration {
	var owns []time.Duration
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, " · ") {
			continue
		}
		var own time.Duration
		for _, part := range strings.Split(strings.TrimSpace(l), " · ") {
			f := strings.Fields(part)
			if len(f) != 2 {
				continue
			}
			for _, s := range ownSteps {
				if f[0] == s {
					d, _ := time.ParseDuration(f[1])
					own += d
				}
			}
		}
		owns = append(owns, own)
	}
	return owns
}

// fmtOwn is "mean X, max Y (n hosts)".
func fmtOwn(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	var most time.Duration
	for _, d := range ds {
		most = max(most, d)
	}
	return fmt.Sprintf("mean %v, max %v (%d hosts)", meanOf(ds).Round(time.Millisecond), most.Round(time.Millisecond), len(ds))
}
