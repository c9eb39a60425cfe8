package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

var handshakeRe = regexp.MustCompile(`ssh handshakes (\S+): (\d+)`)

// BenchmarkDeployFanOut measures a deploy to 1 host (the baseline) and to 3
// isolated hosts in the same run, and the SSH handshakes each host took.
// Run with `make bench`; it prints ratios, never asserts timings.
func BenchmarkDeployFanOut(b *testing.B) {
	env := harness.New(b)
	hosts := env.StartIsolatedHosts(b, 1, 2, 3)
	deploy := func(name string, hs []*harness.SSHD) (time.Duration, map[string]string) {
		a := newApp(b, env, name, "/var/deploy", hs, "", "")
		start := time.Now()
		out := a.mustShipit("--ssh-stats", "deploy", "-s", "production")
		el := time.Since(start)
		hsk := map[string]string{}
		for _, m := range handshakeRe.FindAllStringSubmatch(out, -1) {
			hsk[m[1]] = m[2]
		}
		return el, hsk
	}
	for i := 0; i < b.N; i++ {
		one, h1 := deploy(fmt.Sprintf("bench1x%d", i), hosts[:1])
		three, h3 := deploy(fmt.Sprintf("bench3x%d", i), hosts)
		b.ReportMetric(one.Seconds(), "s/deploy-1host")
		b.ReportMetric(three.Seconds(), "s/deploy-3hosts")
		b.ReportMetric(three.Seconds()/one.Seconds(), "ratio-3hosts/1host")
		fmt.Printf("deploy 1 host:  %6.2fs (baseline)\n", one.Seconds())
		fmt.Printf("deploy 3 hosts: %6.2fs (%.2fx the 1-host baseline; 3.00x would be serial)\n", three.Seconds(), three.Seconds()/one.Seconds())
		fmt.Printf("ssh handshakes per host, 1-host deploy: %s\n", fmtMap(h1))
		fmt.Printf("ssh handshakes per host, 3-host deploy: %s\n", fmtMap(h3))
	}
}

func fmtMap(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}
