package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// execHosts is how many loopback sshds BenchmarkExecFanOut runs against.
const execHosts = 50

// BenchmarkExecFanOut measures `shipit exec -- true` on 50 loopback hosts
// against e2e/bareexec, a bare golang.org/x/crypto/ssh program doing the
// same, in the same run: client CPU (user+system) per host and wall time,
// alternating the two for execRounds rounds. SHIPIT_CPUPROFILE=DIR writes
// a CPU profile of each shipit run there. It prints ratios, asserts no
// timings.
func BenchmarkExecFanOut(b *testing.B) {
	env := harness.New(b)
	hosts := make([]*harness.SSHD, execHosts)
	addrs := make([]string, execHosts)
	for i := range hosts {
		hosts[i] = env.StartSSHD(b, harness.SSHDOpts{})
		addrs[i] = hosts[i].Addr
	}
	a := newApp(b, env, "execbench", b.TempDir(), hosts, "", "")
	a.bin = benchShipit(b)
	bare := buildBareExec(b)
	profDir := os.Getenv("SHIPIT_CPUPROFILE")
	const rounds = 5
	for i := 0; i < b.N; i++ {
		var ours, base execCost
		for r := 0; r < rounds; r++ {
			cmd := exec.Command(a.bin, "--known-hosts", env.KnownHosts, "-i", env.ClientKey, "--ssh-config", env.SSHConfig,
				"exec", "-s", "production", "--", "true")
			cmd.Dir = a.dir
			cmd.Env = append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1", "SHIPIT_CPUPROFILE=")
			if profDir != "" {
				cmd.Env = append(cmd.Env, "SHIPIT_CPUPROFILE="+filepath.Join(profDir, fmt.Sprintf("exec-%d.pprof", r)))
			}
			ours.add(b, cmd)
			base.add(b, exec.Command(bare, append([]string{"-i", env.ClientKey, "-known-hosts", env.KnownHosts, "-user", "root", "-cmd", "true"}, addrs...)...))
		}
		n := time.Duration(rounds * execHosts)
		cpuRatio := float64(ours.cpu) / float64(base.cpu)
		wallRatio := float64(ours.wall) / float64(base.wall)
		fmt.Printf("exec -- true on %d loopback hosts, %d rounds each, alternating, same run:\n", execHosts, rounds)
		fmt.Printf("  bare x/crypto/ssh program (baseline): client CPU %v per host, wall %v per run\n",
			(base.cpu / n).Round(10*time.Microsecond), (base.wall / rounds).Round(time.Millisecond))
		fmt.Printf("  shipit exec:                          client CPU %v per host, wall %v per run\n",
			(ours.cpu / n).Round(10*time.Microsecond), (ours.wall / rounds).Round(time.Millisecond))
		fmt.Printf("  CPU %.2fx the bare program [target <= 1.20x: %s], wall %.2fx\n", cpuRatio, verdict(cpuRatio <= 1.2), wallRatio)
		b.ReportMetric(cpuRatio, "x-bare-cpu")
		b.ReportMetric(wallRatio, "x-bare-wall")
	}
}

// execCost sums the client CPU and wall time of runs.
type execCost struct{ cpu, wall time.Duration }

func (c *execCost) add(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	c.wall += time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out)
	}
	c.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// buildBareExec builds e2e/bareexec as benchShipit builds shipit.
func buildBareExec(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "bareexec")
	_, file, _, _ := goruntime.Caller(0)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./e2e/bareexec")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building e2e/bareexec: %v\n%s", err, out)
	}
	return bin
}
