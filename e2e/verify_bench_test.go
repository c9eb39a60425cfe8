package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// BenchmarkVerify prints what [deploy.verify] costs and how fast it acts,
// on one isolated host with the real Traefik under load: shipit's CPU for a
// deploy watched for 60s against the same deploy unwatched (baseline, same
// run), the bytes one reading of Traefik's metrics takes over SSH, and the
// time from the first 500 the load sees to the rollback starting.
func BenchmarkVerify(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchVerify(b)
	}
}

func benchVerify(b *testing.B) {
	env := harness.New(b)
	const name = "vfb"
	toml := func(addr, domain string) string {
		return routedToml(name, addr, domain, "") + "\n[deploy.verify]\ninterval = \"5s\"\nmin_requests = 30\n"
	}
	r := newRoutedApp(b, env, 21, name, toml, nil)
	load := harness.StartLoad(b, harness.LoadOpts{URL: r.url, Host: r.domain, Clients: 2})
	defer load.Stop()
	cpu := func(args ...string) time.Duration {
		cmd := r.shipitCmd(append([]string{"deploy", "-s", "production"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("deploy %v: %v\n%s", args, err, out)
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	r.commit(map[string]string{"version.txt": "2\n"})
	base := cpu("--no-verify")
	r.commit(map[string]string{"version.txt": "3\n"})
	watched := cpu("--verify", "60s")
	fmt.Printf("verify cost: shipit CPU %v for a deploy watched 60s vs %v unwatched (baseline): %+dms per host per minute of window\n",
		watched.Round(time.Millisecond), base.Round(time.Millisecond), (watched - base).Milliseconds())
	scrape := exec.Command("docker", "exec", "traefik", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/metrics")
	scrape.Env = append(scrape.Environ(), "DOCKER_HOST="+r.host.DockerHost)
	out, err := scrape.Output()
	if err != nil {
		b.Fatalf("reading Traefik's metrics: %v", err)
	}
	fmt.Printf("verify bytes: %d bytes per reading, 12 readings a minute at interval 5s: %.1f KB per host per minute of window\n",
		len(out), float64(len(out)*12)/1024)

	// A bad release: from its first 500 to the rollback starting.
	r.commit(map[string]string{"version.txt": "4\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      FAIL_PERCENT: \"30\"\n"})
	var rollbackAt time.Time
	wait := r.startShipit(func(line string) {
		if rollbackAt.IsZero() && strings.Contains(line, "verify failed") {
			rollbackAt = time.Now()
		}
	}, "deploy", "-s", "production", "--verify", "60s")
	if _, code := wait(); code == 0 {
		b.Fatal("the bad release was kept")
	}
	var firstBad time.Time
	for _, q := range load.Snapshot() {
		if q.Status == 500 && (firstBad.IsZero() || q.Start.Before(firstBad)) {
			firstBad = q.Start
		}
	}
	if firstBad.IsZero() || rollbackAt.IsZero() {
		b.Fatalf("no 500 seen (%v) or no rollback (%v)", firstBad, rollbackAt)
	}
	fmt.Printf("verify reaction: %.1fs from the first 500 through Traefik to the rollback starting (interval 5s, min_requests 30)\n",
		rollbackAt.Sub(firstBad).Seconds())
	b.ReportMetric(rollbackAt.Sub(firstBad).Seconds(), "s/first-500-to-rollback")
}
