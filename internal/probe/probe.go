// Package probe is the health check shipit puts in every release's web
// service: a tiny static Linux binary (source in src/, built by `make
// probes` into bin/, embedded here) that shipit keeps on each host and
// mounts read-only into the container, run by Docker as an exec-form
// health check. The image needs no shell, no curl and no wget: scratch and
// distroless images deploy like any other. The binary is chosen by the
// host's architecture, so the machine running shipit may be anything.
package probe

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed bin/*.gz
var bins embed.FS

// RunDir is the release's directory, relative to the release, that holds
// the probe and, while the release drains, the drain marker; the web
// service mounts it read-only at Mount.
const RunDir = ".shipit-run"

// DrainMarker is the drain marker relative to a release's directory.
const DrainMarker = RunDir + "/drain"

// Mount is where RunDir appears in the web service's container.
const Mount = "/run/shipit"

// Path is the probe inside the container; File its name in .shipit-run.
const (
	File = "probe"
	Path = Mount + "/" + File
)

// DrainPath is the drain marker inside the container: while it exists the
// probe fails, so Docker calls the container unhealthy and Traefik drops it.
const DrainPath = Mount + "/drain"

// Arches are the host architectures shipit carries a probe for.
var Arches = []string{"amd64", "arm64"}

// Arch maps `uname -m` to a Go architecture name, or "" when shipit has no
// probe for it.
func Arch(uname string) string {
	switch strings.TrimSpace(uname) {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "armv8b", "armv8l":
		return "arm64"
	}
	return ""
}

type binary struct {
	gz   []byte // as embedded
	data []byte // decompressed on first use: only a host that lacks the probe needs it
	id   string
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]*binary{}
)

// ID is a short content ID of the probe for a Linux architecture: it names
// the host's copy, so a new shipit never reuses an old probe. It hashes the
// embedded (compressed) bytes: a deploy to a host that has the probe never
// decompresses it.
func ID(arch string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	b := embedded(arch)
	return b.id, b.err
}

// Binary returns the probe for a Linux architecture and its ID.
func Binary(arch string) ([]byte, string, error) {
	mu.Lock()
	defer mu.Unlock()
	b := embedded(arch)
	if b.err == nil && b.data == nil {
		b.data, b.err = gunzip(arch, b.gz)
	}
	return b.data, b.id, b.err
}

// embedded is arch's entry of the cache, read on first use (mu held).
func embedded(arch string) *binary {
	if b, ok := cache[arch]; ok {
		return b
	}
	b := &binary{}
	b.gz, b.err = bins.ReadFile("bin/shipit-probe-linux-" + arch + ".gz")
	if b.err != nil {
		b.err = fmt.Errorf("no health probe for linux/%s", arch)
	} else {
		sum := sha256.Sum256(b.gz)
		b.id = hex.EncodeToString(sum[:6])
	}
	cache[arch] = b
	return b
}

func gunzip(arch string, gz []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("health probe for linux/%s: %w", arch, err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("health probe for linux/%s: %w", arch, err)
	}
	return data, nil
}

// HTTPTest is the exec-form Docker health check of an HTTP probe of
// 127.0.0.1:port/path inside the container (not localhost, which may
// resolve to ::1 first), failing while the drain marker exists.
func HTTPTest(port int, path string, timeout time.Duration) []string {
	return []string{"CMD", Path, "-drain", DrainPath, "-timeout", strconv.FormatInt(max(timeout.Milliseconds(), 1), 10),
		"http", URL(port, path)}
}

// URL is what HTTPTest probes.
func URL(port int, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// ExecTest is the exec-form health check that runs argv (the image's own
// probe) once the drain marker is checked: no shell involved.
func ExecTest(argv []string) []string {
	return append([]string{"CMD", Path, "-drain", DrainPath, "exec"}, argv...)
}

// ShellTest runs a shell command (health_check.cmd as a string) with the
// image's /bin/sh, after the drain check.
func ShellTest(cmd string) []string {
	return ExecTest([]string{"/bin/sh", "-c", cmd})
}
