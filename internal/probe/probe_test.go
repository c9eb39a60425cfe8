package probe

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// The embedded binaries are built from src/ by `make probes`, which records
// the source's hash: a change to the source without a rebuild fails here.
func TestEmbeddedProbesMatchTheirSource(t *testing.T) {
	src, err := os.ReadFile("src/main.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("bin/SOURCE.sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	if got := hex.EncodeToString(sum[:]); got != strings.TrimSpace(string(want)) {
		t.Fatalf("internal/probe/src/main.go changed since the embedded probes were built (sha256 %s, built from %s): run `make probes`",
			got, strings.TrimSpace(string(want)))
	}
}

func TestEmbeddedProbesAreStaticLinuxBinaries(t *testing.T) {
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range Arches {
		data, id, err := Binary(arch)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 12 {
			t.Errorf("%s: id %q", arch, id)
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != machines[arch] || f.Type != elf.ET_EXEC {
			t.Errorf("%s: machine %v type %v", arch, f.Machine, f.Type)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: dynamically linked (has an interpreter)", arch)
			}
		}
	}
	if _, _, err := Binary("riscv64"); err == nil {
		t.Error("Binary(riscv64): no error")
	}
}

func TestArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64\n": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "", "": ""} {
		if got := Arch(in); got != want {
			t.Errorf("Arch(%q) = %q, want %q", in, got, want)
		}
	}
}

// runProbe runs this machine's probe binary with args.
func runProbe(t *testing.T, args ...string) (string, int) {
	t.Helper()
	if goruntime.GOOS != "linux" || (goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64") {
		t.Fatalf("the probe runs on linux/amd64 or arm64 only; this is %s/%s", goruntime.GOOS, goruntime.GOARCH)
	}
	data, _, err := Binary(goruntime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

func TestProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.WriteHeader(200)
		case "/moved":
			http.Redirect(w, r, "/health", http.StatusFound)
		default:
			http.Error(w, "boom", 503)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	cases := []struct {
		path string
		code int
		out  string
	}{
		{"/health", 0, ": 200 OK"},
		{"/moved", 0, ": 302 Found"},
		{"/bad", 1, ": 503 Service Unavailable"},
	}
	for _, c := range cases {
		test := HTTPTest(port, c.path, time.Second)
		out, code := runProbe(t, test[2:]...)
		if code != c.code || !strings.HasSuffix(out, c.out) || !strings.HasPrefix(out, "GET "+URL(port, c.path)) {
			t.Errorf("%s: exit %d %q, want exit %d ...%q", c.path, code, out, c.code, c.out)
		}
	}
	// Nothing listens: refused, with the URL.
	srv.Close()
	out, code := runProbe(t, HTTPTest(port, "/health", time.Second)[2:]...)
	if code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("refused: exit %d %q", code, out)
	}
}

func TestProbeTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accepts and never answers
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	out, code := runProbe(t, HTTPTest(port, "/", 300*time.Millisecond)[2:]...)
	if code != 1 || !strings.Contains(out, "no answer within 300ms") {
		t.Errorf("exit %d %q", code, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestProbeDrainAndExec(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "drain")
	args := func(test []string) []string {
		a := append([]string{}, test[2:]...)
		a[1] = marker // -drain FILE
		return a
	}
	if out, code := runProbe(t, args(ExecTest([]string{"true"}))...); code != 0 {
		t.Errorf("exec true: exit %d %q", code, out)
	}
	if out, code := runProbe(t, args(ShellTest("echo probing; exit 3"))...); code != 3 || out != "probing" {
		t.Errorf("shell: exit %d %q, want the command's own exit 3 and output", code, out)
	}
	if out, code := runProbe(t, args(ExecTest([]string{"no-such-probe-cmd"}))...); code != 1 || !strings.Contains(out, "not found in PATH") {
		t.Errorf("missing command: exit %d %q", code, out)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runProbe(t, args(ExecTest([]string{"true"}))...); code != 1 || !strings.HasPrefix(out, "draining: ") {
		t.Errorf("drained: exit %d %q", code, out)
	}
}
