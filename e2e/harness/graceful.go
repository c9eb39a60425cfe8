package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	return map[string]string{
		"Dockerfile": "FROM " + BaseImage + "\n" +
			"COPY gracefulapp /gracefulapp\n" +
			"COPY version.txt /version\n" +
			// git checkouts keep 0644 when the harness commits files; the
			// base image has no /tmp (a drain marker may go there).
			"RUN [\"/bin/sh\", \"-c\", \"chmod 0755 /gracefulapp && mkdir -p -m 1777 /tmp\"]\n" +
			"EXPOSE 8080\n" +
			"CMD [\"/gracefulapp\"]\n",
		"gracefulapp":        string(GracefulAppBinary(t)),
		"version.txt":        version + "\n",
		"docker-compose.yml": "services:\n  web:\n    build: .\n",
	}
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
