package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// ownSteps are the deploy steps that are only shipit's own work (issue 19):
// not the build, the start, the health wait, the drain or the stop.
var ownSteps = []string{"release", "push", "checkout", "override", "env", "symlink", "lockfile", "cleanup"}

// allSteps is the order of the per-step table.
var allSteps = []string{"release", "push", "checkout", "override", "env", "build", "start", "health", "stop_previous",
	"symlink", "lockfile", "cleanup"}

// BenchmarkOwnTime deploys and rolls back, through the real Traefik, the
// graceful app (isolated host 20) and an app that ignores SIGTERM (busybox
// httpd as PID 1, host 21), with stop_timeout 30 s, and prints for each
// the per-step table, shipit's own time (ownSteps), healthy -> routed, the
// drain, the whole deploy and the rollback. With SHIPIT_BENCH_BASELINE set
// to a commit (e.g. main), a shipit built from that commit does the same
// first on the same hosts, and the ratios are printed side by side. Run
// with `make bench`; it prints, never asserts timings.
func BenchmarkOwnTime(b *testing.B) {
	env := harness.New(b)
	bins := []struct{ name, path string }{}
	if c := os.Getenv("SHIPIT_BENCH_BASELINE"); c != "" {
		bins = append(bins, struct{ name, path string }{"baseline " + c, buildBaseline(b, c)})
	}
	// As users get it: the tests' -race build decompresses the health
	// probe about ten times slower, which shows as override's own time.
	bins = append(bins, struct{ name, path string }{"this tree", benchShipit(b)})
	kinds := []struct {
		name  string
		host  int
		files map[string]string
	}{
		{"graceful", zdIsolatedHost, nil},
		{"ignores SIGTERM", zdIsolatedHost + 1, ignoringAppFiles("1")},
	}
	for i := 0; i < b.N; i++ {
		for _, k := range kinds {
			name := fmt.Sprintf("own%d%s", i, strings.Fields(k.name)[0])
			r := newRoutedAppOf(b, env, k.host, name, harness.Busybox,
				func(addr, domain string) string {
					return strings.Replace(routedToml(name, addr, domain, ""), `stop_timeout = "10s"`, `stop_timeout = "30s"`, 1)
				},
				withFiles(k.files, map[string]string{"shipit.lua": `after("deploy:health", function(h) h:run("date +%s.%N > /var/deploy/` + name + `/.routed-at") end)
`}))
			var base *ownRun
			for v, bin := range bins {
				r.bin = bin.path
				run := measureOwn(b, env, r, name, k.files != nil, v+2)
				fmt.Printf("%s app, %s, 1 host: %s\n", k.name, bin.name, run)
				if base != nil {
					fmt.Printf("  ratios this tree / baseline: own %.2fx, deploy %.2fx, rollback %.2fx\n",
						run.own.Seconds()/base.own.Seconds(), run.deploy.Seconds()/base.deploy.Seconds(), run.rollback.Seconds()/base.rollback.Seconds())
				}
				base = run
				b.ReportMetric(run.own.Seconds(), "s/own-"+strings.Fields(k.name)[0])
			}
		}
	}
}

// ownRun is one measured deploy and rollback.
type ownRun struct {
	steps            map[string]time.Duration
	own              time.Duration
	routed, drain    float64
	deploy, rollback time.Duration
	rollbackSteps    string
}

func (o *ownRun) String() string {
	var parts []string
	for _, s := range allSteps {
		parts = append(parts, fmt.Sprintf("%s %v", s, o.steps[s].Round(time.Millisecond)))
	}
	return fmt.Sprintf("deploy %v = %s\n  shipit's own time %v; healthy -> routed %.2fs; drain %.2fs\n  rollback %v = %s",
		o.deploy.Round(10*time.Millisecond), strings.Join(parts, " · "), o.own.Round(time.Millisecond), o.routed, o.drain,
		o.rollback.Round(10*time.Millisecond), o.rollbackSteps)
}

// measureOwn commits version v, deploys it and rolls it back.
func measureOwn(b *testing.B, env *harness.Env, r *routedApp, name string, ignoring bool, v int) *ownRun {
	files := map[string]string{"version.txt": fmt.Sprintf("%d\n", v)}
	if ignoring {
		files = ignoringAppFiles(strconv.Itoa(v))
	}
	r.commit(files)
	// Docker keeps only its last 256 events: on a loaded machine the probes'
	// exec events push a deploy's health_status out of that window, so they
	// are watched while it runs.
	events := watchHealth(b, r.host)
	start := time.Now()
	out := r.mustShipit("deploy", "-s", "production")
	end := time.Now()
	run := &ownRun{deploy: end.Sub(start), steps: parseSteps(b, out), drain: -1}
	for _, s := range ownSteps {
		run.own += run.steps[s]
	}
	if m := drainedRe.FindStringSubmatch(out); m != nil {
		run.drain, _ = strconv.ParseFloat(m[1], 64)
		if m[2] == "ms" {
			run.drain /= 1000
		}
	}
	l, _ := readLock(b, filepath.Join(r.host.DeployRoot, name))
	healthy := events(name + "-" + l.CurrentRelease + "-web-")
	raw, err := os.ReadFile(filepath.Join(r.host.DeployRoot, name, ".routed-at"))
	if err != nil {
		b.Fatal(err)
	}
	sec, _ := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	run.routed = time.Unix(0, int64(sec*1e9)).Sub(healthy).Seconds()
	start = time.Now()
	out = r.mustShipit("rollback", "-s", "production")
	run.rollback = time.Since(start)
	run.rollbackSteps = stepLine(out)
	return run
}

// parseSteps reads the summary's step line: "release 1.58s · push 488ms · ...".
func parseSteps(b *testing.B, out string) map[string]time.Duration {
	line := stepLine(out)
	if line == "" {
		b.Fatalf("no step line in the output:\n%s", out)
	}
	steps := map[string]time.Duration{}
	for _, part := range strings.Split(line, " · ") {
		f := strings.Fields(part)
		if len(f) != 2 {
			continue
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			b.Fatalf("step %q: %v", part, err)
		}
		steps[f[0]] = d
	}
	return steps
}

func stepLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, " · ") {
			return l
		}
	}
	return ""
}

// ignoringAppFiles is an app whose main process ignores SIGTERM: busybox
// httpd as PID 1 (no init), answering "version V" and /health.
func ignoringAppFiles(version string) map[string]string {
	return map[string]string{
		"Dockerfile":         "FROM " + harness.BaseImage + "\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
		"www/index.html":     "version " + version + "\n",
		"www/health":         "ok\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n",
	}
}

func withFiles(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// buildBaseline builds shipit from commit c of this repository.
func buildBaseline(b *testing.B, c string) string {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	archive := exec.Command("sh", "-c", "git archive "+strconv.Quote(c)+" | tar -x -C "+strconv.Quote(src))
	archive.Dir = ".."
	if out, err := archive.CombinedOutput(); err != nil {
		b.Fatalf("git archive %s: %v\n%s", c, err, out)
	}
	bin := filepath.Join(dir, "shipit")
	build := exec.Command("go", "build", "-o", bin, "./cmd/shipit")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the baseline %s: %v\n%s", c, err, out)
	}
	return bin
}

// watchHealth follows the host's health_status events from now; the
// function it returns stops that and gives the first "healthy" of a
// container whose name starts with prefix.
func watchHealth(b *testing.B, host *harness.SSHD) func(prefix string) time.Time {
	cmd := exec.Command("docker", "events", "--filter", "event=health_status",
		"--format", "{{.TimeNano}} {{.Status}} {{index .Actor.Attributes \"name\"}}")
	if host.DockerHost != "" {
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host.DockerHost)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func(prefix string) time.Time {
		time.Sleep(time.Second) // events still in flight
		cmd.Process.Kill()
		cmd.Wait()
		for _, l := range strings.Split(out.String(), "\n") {
			f := strings.Fields(l)
			if len(f) == 4 && f[2] == "healthy" && strings.HasPrefix(f[3], prefix) {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return time.Unix(0, n)
			}
		}
		b.Fatalf("no health_status: healthy event of %s* in:\n%s", prefix, out.String())
		return time.Time{}
	}
}
