// Package e2e drives the real shipit binary against real OpenSSH servers
// and real Docker engines on this machine (see e2e/harness).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

var shipitBin string

var (
	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
)

// benchShipit is shipit built as users get it, for benchmarks: tests use a
// -race build, which runs compression about twenty times slower.
func benchShipit(t testing.TB) string {
	t.Helper()
	benchBinOnce.Do(func() {
		benchBin = filepath.Join(filepath.Dir(shipitBin), "shipit-norace")
		_, file, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-trimpath", "-o", benchBin, "./cmd/shipit")
		build.Dir = filepath.Join(filepath.Dir(file), "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			benchBinErr = fmt.Errorf("building shipit without -race: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		t.Fatal(benchBinErr)
	}
	return benchBin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shipit-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	shipitBin = filepath.Join(dir, "shipit")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-race", "-o", shipitBin, "./cmd/shipit")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building shipit:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// app is a project directory on the "developer machine".
type app struct {
	t    testing.TB
	env  *harness.Env
	dir  string
	home string
	name string
	env2 []string // extra environment for the shipit process
	bin  string   // shipit binary; "" = shipitBin
}

func (a *app) binary() string {
	if a.bin != "" {
		return a.bin
	}
	return shipitBin
}

// appFiles is a busybox httpd web app and a worker, with a health file.
func appFiles(version string) map[string]string {
	return map[string]string{
		"Dockerfile":         "FROM " + harness.BaseImage + "\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
		"www/index.html":     "version " + version + "\n",
		"www/health":         "ok\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n    init: true\n  worker:\n    image: " + harness.BaseImage + "\n    init: true\n    command: [\"sleep\", \"1d\"]\n",
	}
}

type stageHost struct {
	s     *harness.SSHD
	extra string // extra TOML keys for the host table
}

// newApp writes a git project with shipit.toml deploying to hosts.
func newApp(t testing.TB, env *harness.Env, name string, deployTo string, hosts []*harness.SSHD, stageExtra, deployExtra string) *app {
	t.Helper()
	a := &app{t: t, env: env, dir: filepath.Join(env.Dir, "app-"+name), home: filepath.Join(env.Dir, "home"), name: name}
	if err := os.MkdirAll(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, h := range hosts {
		hs = append(hs, fmt.Sprintf("{ address = %q }", h.Addr))
	}
	files := appFiles("1")
	files["shipit.toml"] = fmt.Sprintf(`[app]
name = %q
branch = "main"

[deploy]
deploy_to = %q
keep_releases = 2
%s
[deploy.health_check]
port = 8080
path = "/health"
interval = "500ms"
retries = 10

[stages.production]
user = "root"
hosts = [%s]
%s
[stages.production.traefik]
domain = "demo.example.com"
tls = true
# Most tests run no Traefik: the domain only shapes the labels.
allow_unrouted = true
`, name, deployTo, deployExtra, strings.Join(hs, ", "), stageExtra)
	harness.GitRepo(t, a.dir, files)
	return a
}

// commit changes files and commits them.
func (a *app) commit(files map[string]string) { harness.GitRepo(a.t, a.dir, files) }

// shipit runs the binary in the app dir with the harness's keys and
// known_hosts only (HOME is an empty dir, no agent).
func (a *app) shipit(args ...string) (string, int) {
	a.t.Helper()
	full := append([]string{"--known-hosts", a.env.KnownHosts, "-i", a.env.ClientKey, "--ssh-config", a.env.SSHConfig}, args...)
	cmd := exec.Command(a.binary(), full...)
	cmd.Dir = a.dir
	cmd.Env = append(append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1"), a.env2...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("running shipit: %v", err)
	}
	a.t.Logf("$ shipit %s (exit %d)\n%s", strings.Join(args, " "), code, out)
	return string(out), code
}

func (a *app) mustShipit(args ...string) string {
	a.t.Helper()
	out, code := a.shipit(args...)
	if code != 0 {
		a.t.Fatalf("shipit %s failed (exit %d):\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func mustContain(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}
