package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// GracefulAppPort is the port the graceful app listens on in its container.
const GracefulAppPort = 8080

var (
	gracefulOnce sync.Once
	gracefulBin  []byte
	gracefulErr  error
)

// GracefulAppBinary returns the static Linux binary of e2e/harness/gracefulapp
// (built once per test process with CGO_ENABLED=0; see that package for what
// the app does). It fails the test when the build fails.
func GracefulAppBinary(t testing.TB) []byte {
	t.Helper()
	gracefulOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			gracefulErr = os.ErrNotExist
			return
		}
		src := filepath.Join(filepath.Dir(file), "gracefulapp")
		dir, err := os.MkdirTemp("", "shipit-gracefulapp-")
		if err != nil {
			gracefulErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "gracefulapp")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			gracefulErr = &buildError{err: err, out: string(b)}
			return
		}
		gracefulBin, gracefulErr = os.ReadFile(out)
	})
	if gracefulErr != nil {
		t.Fatalf("harness: building e2e/harness/gracefulapp: %v", gracefulErr)
	}
	return gracefulBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// GracefulAppFiles returns the files of a shipit project whose compose file
// has one service, web (`build: .`), running the graceful app and answering
// "version <version>": Dockerfile (FROM BaseImage), the app binary
// "gracefulapp", "version.txt" and docker-compose.yml. Add a shipit.toml
// (health check port GracefulAppPort, path /health) and commit them with
// GitRepo; a new version is a commit of "version.txt" alone.
func GracefulAppFiles(t testing.TB, version string) map[string]string {
	t.Helper()
	return GracefulAppFilesOf(t, Busybox, version)
}

// ImageKind is the kind of image the graceful app is packaged in, as users'
// images come: with busybox (a shell, wget), FROM scratch (no shell, no
// tool: Go and Rust services, distroless), or with a shell but neither curl
// nor wget (the official -slim images).
type ImageKind string

const (
	Busybox     ImageKind = "busybox"
	Scratch     ImageKind = "scratch"
	ShellNoCurl ImageKind = "shell-no-curl"
)

// GracefulAppFilesOf is GracefulAppFiles packaged in an image of kind k.
// ShellNoCurl builds FROM DashImage: isolated hosts need
// Env.LoadImage(t, host, DashImage) first (EnsureDashImage builds it).
func GracefulAppFilesOf(t testing.TB, k ImageKind, version string) map[string]string {
	t.Helper()
	var dockerfile string
	switch k {
	case Scratch, ShellNoCurl:
		from := "scratch"
		if k == ShellNoCurl {
			from = DashImage
		}
		// gracefulapp is committed executable (GitRepo): no RUN chmod,
		// which would need a shell.
		dockerfile = "FROM " + from + "\n" +
			"COPY gracefulapp /gracefulapp\n" +
			"COPY version.txt /version\n" +
			"EXPOSE 8080\n" +
			"CMD [\"/gracefulapp\"]\n"
	default:
		dockerfile = "FROM " + BaseImage + "\n" +
			"COPY gracefulapp /gracefulapp\n" +
			"COPY version.txt /version\n" +
			// git checkouts keep 0644 when the harness commits files; the
			// base image has no /tmp (a drain marker may go there).
			"RUN [\"/bin/sh\", \"-c\", \"chmod 0755 /gracefulapp && mkdir -p -m 1777 /tmp\"]\n" +
			"EXPOSE 8080\n" +
			"CMD [\"/gracefulapp\"]\n"
	}
	return map[string]string{
		"Dockerfile":         dockerfile,
		"gracefulapp":        string(GracefulAppBinary(t)),
		"version.txt":        version + "\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n",
	}
}

// DashImage has Debian's dash as /bin/sh with the libraries it needs, and
// nothing else: a shell but no curl and no wget, like python:3-slim.
const DashImage = "shipit-dash:latest"

var (
	dashOnce sync.Once
	dashErr  error
)

// EnsureDashImage builds DashImage on the default engine once per test
// process (from this machine's /bin/dash and the libraries ldd names), and
// checks that it has a shell but neither curl nor wget.
func EnsureDashImage(t testing.TB) {
	t.Helper()
	dashOnce.Do(func() { dashErr = buildDashImage() })
	if dashErr != nil {
		t.Fatalf("harness: building %s: %v", DashImage, dashErr)
	}
}

func buildDashImage() error {
	dir, err := os.MkdirTemp("", "shipit-dash-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "rootfs")
	dash, err := filepath.EvalSymlinks("/bin/dash")
	if err != nil {
		return fmt.Errorf("no /bin/dash on this machine (Debian's dash package): %w", err)
	}
	files := []string{dash}
	out, err := exec.Command("ldd", dash).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", dash, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			return err
		}
		for _, name := range []string{f, real} {
			if err := copyFile(real, filepath.Join(root, name)); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(dash, filepath.Join(root, "bin", "sh")); err != nil && !os.IsExist(err) {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY rootfs/ /\n"), 0o644); err != nil {
		return err
	}
	if b, err := exec.Command("docker", "build", "-q", "-t", DashImage, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("docker build: %v\n%s", err, b)
	}
	// The point of the image: a shell, no curl, no wget.
	check := exec.Command("docker", "run", "--rm", "--network", "none", DashImage, "/bin/sh", "-c",
		"echo shell ok; command -v curl || command -v wget || echo no-curl-no-wget")
	b, err := check.CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "shell ok\nno-curl-no-wget" {
		return fmt.Errorf("%s is not a shell without curl and wget: %v: %q", DashImage, err, b)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// BuildGracefulImage builds the graceful app answering "version <version>"
// as image tag on the engine of s (nil: the default engine), for tests that
// run containers without shipit.
func (e *Env) BuildGracefulImage(t testing.TB, s *SSHD, tag, version string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range GracefulAppFiles(t, version) {
		if name == "docker-compose.yml" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	if s != nil && s.DockerHost != "" {
		env = []string{"DOCKER_HOST=" + s.DockerHost}
	}
	runCmd(t, "", append(env, "DOCKER_BUILDKIT=0"), "docker", "build", "-q", "-t", tag, dir)
}
