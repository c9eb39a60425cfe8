package imagexfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const baseImage = "shipit-busybox:latest"

func realDocker(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	if err := exec.Command(p, "info", "--format", "{{.ID}}").Run(); err != nil {
		t.Skip("docker engine not reachable")
	}
	return p
}

func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func randHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ensureBase builds shipit-busybox:latest from the static busybox when the
// engine lacks it (no registry is reachable here; never pull).
func ensureBase(t *testing.T) {
	t.Helper()
	realDocker(t)
	if exec.Command("docker", "image", "inspect", baseImage).Run() == nil {
		return
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed and " + baseImage + " missing")
	}
	dir := t.TempDir()
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(
		"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n"), 0o644))
	dockerOut(t, "build", "-q", "-t", baseImage, dir)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// buildImage builds a unique image (random + compressible data) tagged ref
// and returns its ID. The tag is removed when the test ends.
func buildImage(t *testing.T, ref string) string {
	t.Helper()
	ensureBase(t)
	dir := t.TempDir()
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)
	data = append(data, bytes.Repeat([]byte("shipit "), 150<<10)...)
	must(t, os.WriteFile(filepath.Join(dir, "data"), data, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+baseImage+"\nCOPY data /data\n"), 0o644))
	dockerOut(t, "build", "-q", "-t", ref, dir)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	id, err := LocalImageID(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// shim writes an executable sh script and returns its path.
func shim(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	must(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

func setLocalDocker(t *testing.T, p string) {
	old := localDocker
	localDocker = p
	t.Cleanup(func() { localDocker = old })
}

func newConn(t *testing.T) *localConn {
	return &localConn{HostName: "web1.example", Dir: t.TempDir()}
}

func imageIDOrEmpty(ref string) string {
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func TestLocalImageIDMissing(t *testing.T) {
	realDocker(t)
	_, err := LocalImageID(context.Background(), "shipit-does-not-exist-"+randHex()+":x")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Host != "local" || !strings.Contains(strings.ToLower(ce.Stderr), "no such image") {
		t.Fatalf("err = %v", err)
	}
}

// The host (same engine) already has the ID: nothing is streamed, the new
// ref is created with docker tag.
func TestTransferSkipsImagesTheHostHas(t *testing.T) {
	ref := "shipit-xfer-test:" + randHex()
	id := buildImage(t, ref)
	newRef := "shipit-xfer-test:" + randHex()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", newRef).Run() })

	c := newConn(t)
	res, err := Transfer(context.Background(), c, []Image{{Ref: ref, ID: id}, {Ref: newRef, ID: id}}, "docker", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sent) != 0 || len(res.Skipped) != 2 || res.Bytes != 0 {
		t.Fatalf("res = %+v", res)
	}
	if got := imageIDOrEmpty(newRef); got != id {
		t.Fatalf("%s on host = %q, want %s", newRef, got, id)
	}
	for _, cmd := range c.Commands() {
		if strings.Contains(cmd, " load") {
			t.Fatalf("docker load ran: %q", cmd)
		}
	}
}

// The send path on one engine: we save the image to a tar (the "developer
// machine's copy"), remove it from the engine (so the "host" lacks its ID),
// and make the local `docker save` a shim that replays the tar. Transfer must
// then stream it into the engine's `docker load`, after which the ref is back
// with the same ID. A second image that the engine still has is only tagged.
func TestTransferSendsMissingImages(t *testing.T) {
	docker := realDocker(t)
	missingRef := "shipit-xfer-test:" + randHex()
	missingID := buildImage(t, missingRef)
	presentRef := "shipit-xfer-test:" + randHex()
	presentID := buildImage(t, presentRef)
	presentNew := "shipit-xfer-test:" + randHex()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", presentNew).Run() })

	tar := filepath.Join(t.TempDir(), "img.tar")
	dockerOut(t, "save", "-o", tar, missingRef)
	dockerOut(t, "rmi", missingRef)
	if imageIDOrEmpty(missingID) != "" {
		t.Fatalf("%s still present after rmi", missingID)
	}
	log := filepath.Join(t.TempDir(), "save.log")
	setLocalDocker(t, shim(t, "docker",
		"if [ \"$1\" = save ]; then echo \"$*\" >>"+log+"; exec cat "+tar+"; fi\nexec "+docker+" \"$@\"\n"))

	c := newConn(t)
	res, err := Transfer(context.Background(), c, []Image{
		{Ref: missingRef, ID: missingID},
		{Ref: presentNew, ID: presentID},
	}, "docker", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Sent, ",") != missingRef || strings.Join(res.Skipped, ",") != presentNew {
		t.Fatalf("res = %+v", res)
	}
	st, _ := os.Stat(tar)
	if res.Bytes <= 0 || res.Bytes >= st.Size()/2 {
		t.Fatalf("sent %d compressed bytes for a %d byte tar", res.Bytes, st.Size())
	}
	if got := imageIDOrEmpty(missingRef); got != missingID {
		t.Fatalf("%s after load = %q, want %s", missingRef, got, missingID)
	}
	if got := imageIDOrEmpty(presentNew); got != presentID {
		t.Fatalf("%s = %q, want %s", presentNew, got, presentID)
	}
	saved, _ := os.ReadFile(log)
	if strings.TrimSpace(string(saved)) != "save -- "+missingRef {
		t.Fatalf("local docker save invoked as %q, want only the missing image", saved)
	}
}

func TestTransferLoadFails(t *testing.T) {
	ref := "shipit-xfer-test:" + randHex()
	id := buildImage(t, ref)
	// Remote docker: reports every image missing, and load dies early.
	remoteDocker := shim(t, "rdocker", `case "$1" in
image) echo "Error: No such image: $4" >&2; exit 1;;
load) head -c 100 >/dev/null; echo "boom: disk full" >&2; exit 3;;
esac
exit 99
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := Transfer(ctx, newConn(t), []Image{{Ref: ref, ID: id}}, remoteDocker, t.Logf)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Host != "web1.example" || ce.Code != 3 || !strings.Contains(ce.Stderr, "boom: disk full") || !strings.Contains(ce.Cmd, "load") {
		t.Fatalf("err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Transfer hung until timeout")
	}
}

func TestTransferSaveFails(t *testing.T) {
	realDocker(t)
	setLocalDocker(t, shim(t, "docker", "echo 'Error: No such image: demo-web:x' >&2; exit 1\n"))
	id := "sha256:" + strings.Repeat("0", 64)
	_, err := Transfer(context.Background(), newConn(t), []Image{{Ref: "demo-web:x", ID: id}}, "docker", t.Logf)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Host != "local" || ce.Code != 1 || !strings.Contains(ce.Stderr, "No such image: demo-web:x") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransferDockerMissingOnHost(t *testing.T) {
	c := newConn(t)
	c.Env = []string{"PATH=" + t.TempDir()}
	_, err := Transfer(context.Background(), c, []Image{{Ref: "a:b", ID: "sha256:" + strings.Repeat("1", 64)}}, "docker", nil)
	if !errors.Is(err, ErrDockerMissing) || !strings.Contains(err.Error(), "web1.example") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransferCancel(t *testing.T) {
	realDocker(t)
	// Local save never produces output; the remote load waits for it.
	setLocalDocker(t, shim(t, "docker", "exec sleep 60\n"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, err := Transfer(ctx, newConn(t), []Image{{Ref: "shipit-xfer-test:never", ID: "sha256:" + strings.Repeat("2", 64)}}, "docker", t.Logf)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestTransferRejectsBadInput(t *testing.T) {
	c := newConn(t)
	for _, im := range []Image{{Ref: "", ID: "sha256:aa"}, {Ref: "x", ID: "aa"}, {Ref: "-x", ID: "sha256:aa"}} {
		if _, err := Transfer(context.Background(), c, []Image{im}, "docker", nil); err == nil {
			t.Errorf("Transfer(%+v) succeeded", im)
		}
	}
	if len(c.Commands()) != 0 {
		t.Fatalf("commands ran: %q", c.Commands())
	}
}
