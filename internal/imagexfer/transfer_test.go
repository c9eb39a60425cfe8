package imagexfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/secrets"
)

// The "host" in these tests is this machine's own engine, reached through a
// local remote.Conn; the developer's engine is a fake that knows only
// fixture images (see fixture_test.go). Layers are random per test, so the
// engine never has them before.

func newConn(t testing.TB) *localConn {
	return &localConn{HostName: "web1.example", Dir: t.TempDir()}
}

func hostID(ref string) string {
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func rmiOnCleanup(t testing.TB, refs ...string) {
	t.Cleanup(func() {
		for _, r := range refs {
			_ = exec.Command("docker", "rmi", "-f", r).Run()
		}
	})
}

func testHost(t testing.TB, c *localConn) Host {
	return Host{Conn: c, Docker: "docker", StagingDir: filepath.Join(t.TempDir(), "stage")}
}

func TestTransferSendsOnlyMissingLayers(t *testing.T) {
	for _, layout := range []string{"legacy", "oci"} {
		t.Run(layout, func(t *testing.T) {
			requireDocker(t)
			r := testRand()
			base := newLayer(t, "base-"+r, 1<<20)
			p1 := newLayer(t, "p1-"+r, 512<<10)
			p2 := newLayer(t, "p2-"+r, 512<<10)
			repo := "shipit-xfer-test-" + r
			a, b := newImage(repo+":a", base, p1), newImage(repo+":b", base, p2)
			b2 := &fxImage{Ref: repo + ":b2", Layers: b.Layers, Config: b.Config}
			rmiOnCleanup(t, a.Ref, b.Ref, b2.Ref)
			fake := newFakeLocal(t)
			for _, im := range []*fxImage{a, b, b2} {
				if layout == "legacy" {
					fake.add(legacySave(t, im), []string{im.configDigest()}, im)
				} else {
					s, ids := ociSave(t, false, im)
					fake.add(s, ids, im)
				}
			}
			c := newConn(t)
			h := testHost(t, c)
			var last Progress
			var mu sync.Mutex
			h.Progress = func(p Progress) { mu.Lock(); last = p; mu.Unlock() }

			// 1. A fresh host gets every layer.
			s := NewSender(Options{})
			defer s.Close()
			res, err := s.Transfer(context.Background(), h, []string{a.Ref})
			if err != nil {
				t.Fatal(err)
			}
			if res.LayersSent != 2 || res.LayersSkipped != 0 || strings.Join(res.Sent, ",") != a.Ref || hostID(a.Ref) != a.configDigest() {
				t.Fatalf("first transfer: %+v, host id %s", res, hostID(a.Ref))
			}
			mu.Lock()
			if last.Phase != PhaseDone || last.BytesSent != res.Bytes || last.Bytes != res.Bytes || last.LayersDone != 2 {
				t.Fatalf("last progress %+v, result bytes %d", last, res.Bytes)
			}
			mu.Unlock()

			// 2. Next run, a new image on the same base: only its own layer.
			s2 := NewSender(Options{})
			defer s2.Close()
			res, err = s2.Transfer(context.Background(), h, []string{b.Ref})
			if err != nil {
				t.Fatal(err)
			}
			if res.LayersSent != 1 || res.LayersSkipped != 1 || hostID(b.Ref) != b.configDigest() {
				t.Fatalf("second transfer: %+v", res)
			}
			if res.Bytes <= 0 || res.Bytes > int64(len(p2.tar)) {
				t.Fatalf("sent %d bytes for a %d byte layer", res.Bytes, len(p2.tar))
			}

			// 3. Unchanged, and the same image under a new name: no save, no bytes.
			before := strings.Count(fake.calls(), "save")
			res, err = NewSender(Options{}).Transfer(context.Background(), h, []string{b.Ref, b2.Ref})
			if err != nil {
				t.Fatal(err)
			}
			if res.LayersSent != 0 || res.Bytes != 0 || len(res.Skipped) != 2 || hostID(b2.Ref) != b.configDigest() {
				t.Fatalf("unchanged: %+v", res)
			}
			if n := strings.Count(fake.calls(), "save"); n != before {
				t.Fatalf("docker save ran for images the host has:\n%s", fake.calls())
			}
			if _, err := os.Stat(h.StagingDir); !os.IsNotExist(err) {
				t.Fatalf("staging dir left behind: %v", err)
			}
		})
	}
}

// Two hosts wanting the same layer: one docker save, one compression, both
// get it (here both hosts are the same engine, each with its own staging).
func TestTransferFansOutOneSave(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":x", newLayer(t, "x-"+r, 1<<20), newLayer(t, "y-"+r, 256<<10))
	rmiOnCleanup(t, im.Ref)
	fake := newFakeLocal(t)
	fake.add(legacySave(t, im), []string{im.configDigest()}, im)
	s := NewSender(Options{})
	defer s.Close()
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Transfer(context.Background(), testHost(t, newConn(t)), []string{im.Ref})
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].LayersSent != 2 || results[i].Bytes != results[0].Bytes {
			t.Fatalf("host %d: %+v", i, results[i])
		}
	}
	if n := strings.Count(fake.calls(), "save"); n != 1 {
		t.Fatalf("docker save ran %d times:\n%s", n, fake.calls())
	}
}

// cutConn breaks the upload stream of the n-th layer after some bytes, as a
// dropped connection would.
type cutConn struct {
	*localConn
	uploads atomic.Int32
	cutAt   int32
}

type cutReader struct {
	r    io.Reader
	left int
}

var errCut = errors.New("connection lost")

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	n, err := c.r.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

func (c *cutConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if strings.Contains(cmd, ".part-") && strings.Contains(cmd, " > ") && c.uploads.Add(1) == c.cutAt {
		stdin = &cutReader{r: stdin, left: 64 << 10}
	}
	return c.localConn.Run(ctx, cmd, stdin, stdout, stderr)
}

// A transfer cut mid-layer leaves the engine without the image, the complete
// layers staged and a partial file; the next run removes the partial file
// and sends only what is still missing.
func TestTransferCutThenResume(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":cut", newLayer(t, "a-"+r, 512<<10), newLayer(t, "b-"+r, 1<<20), newLayer(t, "c-"+r, 768<<10))
	rmiOnCleanup(t, im.Ref)
	fake := newFakeLocal(t)
	fake.add(legacySave(t, im), []string{im.configDigest()}, im)
	c := &cutConn{localConn: newConn(t), cutAt: 2}
	h := testHost(t, c.localConn)
	h.Conn = c
	_, err := NewSender(Options{Uploads: 1}).Transfer(context.Background(), h, []string{im.Ref})
	var cutErr *CutError
	if !errors.As(err, &cutErr) || !errors.Is(err, errCut) || !strings.Contains(cutErr.Hint(), "not sent twice") {
		t.Fatalf("cut transfer: err = %v", err)
	}
	if hostID(im.Ref) != "" {
		t.Fatal("the engine has the image after a cut transfer")
	}
	ents, _ := os.ReadDir(h.StagingDir)
	var complete, parts int
	for _, e := range ents {
		switch {
		case strings.Contains(e.Name(), ".part-"):
			parts++
		case strings.HasSuffix(e.Name(), ".tar"):
			complete++
		}
	}
	if complete != 1 || parts != 1 {
		t.Fatalf("staging after the cut: %d complete, %d partial: %v", complete, parts, ents)
	}

	res, err := NewSender(Options{}).Transfer(context.Background(), Host{Conn: c.localConn, StagingDir: h.StagingDir}, []string{im.Ref})
	if err != nil {
		t.Fatal(err)
	}
	if res.LayersReused != 1 || res.LayersSent != 2 || hostID(im.Ref) != im.configDigest() {
		t.Fatalf("resumed transfer: %+v", res)
	}
	if _, err := os.Stat(h.StagingDir); !os.IsNotExist(err) {
		t.Fatalf("staging dir left after success: %v", err)
	}
}

// A host short of disk: the engine's message, a hint, and the layers
// received so far kept for the next attempt.
func TestTransferDiskFull(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":full", newLayer(t, "a-"+r, 256<<10))
	rmiOnCleanup(t, im.Ref)
	fake := newFakeLocal(t)
	fake.add(legacySave(t, im), []string{im.configDigest()}, im)
	rdocker := filepath.Join(t.TempDir(), "rdocker")
	must(t, os.WriteFile(rdocker, []byte(`#!/bin/sh
if [ "$1" = load ]; then cat >/dev/null; echo "Error processing tar file(exit status 1): write /var/lib/docker/tmp/docker-import-1/x.gz: no space left on device" >&2; exit 1; fi
exec docker "$@"
`), 0o755))
	h := testHost(t, newConn(t))
	h.Docker = rdocker
	_, err := NewSender(Options{}).Transfer(context.Background(), h, []string{im.Ref})
	var df *DiskFullError
	var ce *CommandError
	if !errors.As(err, &df) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(df.Hint(), "docker system prune") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(h.StagingDir, "*.tar")); len(ents) != 1 {
		t.Fatalf("staged layers after a full disk: %v", ents)
	}
}

func TestTransferDockerMissingOnHost(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":nd", newLayer(t, "a-"+r, 1<<10))
	fake := newFakeLocal(t)
	fake.add(legacySave(t, im), []string{im.configDigest()}, im)
	c := newConn(t)
	c.Env = []string{"PATH=" + t.TempDir()}
	_, err := NewSender(Options{}).Transfer(context.Background(), testHost(t, c), []string{im.Ref})
	if !errors.Is(err, ErrDockerMissing) || !strings.Contains(err.Error(), "web1.example") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransferLocalImageMissing(t *testing.T) {
	requireDocker(t)
	newFakeLocal(t)
	_, err := NewSender(Options{}).Transfer(context.Background(), testHost(t, newConn(t)), []string{"demo-web:nope"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Host != "local" || !strings.Contains(ce.Stderr, "No such image") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransferSaveFails(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":sf", newLayer(t, "a-"+r, 1<<10))
	fake := newFakeLocal(t)
	fake.add(nil, []string{im.configDigest()}, im)
	os.Remove(filepath.Join(fake.dir, "save", fileKey(im.Ref))) // save: no such image
	_, err := NewSender(Options{}).Transfer(context.Background(), testHost(t, newConn(t)), []string{im.Ref})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Host != "local" || !strings.Contains(ce.Cmd, "save") {
		t.Fatalf("err = %v", err)
	}
}

func TestTransferCancel(t *testing.T) {
	requireDocker(t)
	r := testRand()
	im := newImage("shipit-xfer-test-"+r+":c", newLayer(t, "a-"+r, 1<<10))
	fake := newFakeLocal(t)
	fake.add(nil, []string{im.configDigest()}, im)
	p := filepath.Join(fake.dir, "save", fileKey(im.Ref))
	os.Remove(p)
	must(t, syscall.Mkfifo(p, 0o644)) // docker save never answers
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	s := NewSender(Options{})
	_, err := s.Transfer(ctx, testHost(t, newConn(t)), []string{im.Ref})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	s.Close() // releases the stuck save
}

func TestTransferRejectsBadInput(t *testing.T) {
	c := newConn(t)
	for _, ref := range []string{"", "-x", "a b", "notag", "host:5000/notag", "a@sha256:00"} {
		if _, err := NewSender(Options{}).Transfer(context.Background(), testHost(t, c), []string{ref}); err == nil {
			t.Errorf("Transfer(%q) succeeded", ref)
		}
	}
	if _, err := NewSender(Options{}).Transfer(context.Background(), Host{Conn: c, StagingDir: "relative"}, []string{"a:b"}); err == nil {
		t.Error("relative staging dir accepted")
	}
	if len(c.Commands()) != 0 {
		t.Fatalf("commands ran: %q", c.Commands())
	}
}

func TestLocalCommandsGetNoSecrets(t *testing.T) {
	if len(secretEnv) == 0 || secretEnv[0] != secrets.EnvKey {
		t.Fatalf("secretEnv %v does not hold %s", secretEnv, secrets.EnvKey)
	}
	t.Setenv(secrets.EnvKey, "AGE-SECRET-KEY-1TEST")
	t.Setenv("SHIPIT_TEST_VISIBLE", "yes")
	fake := newFakeLocal(t)
	_, _ = LocalImageID(context.Background(), "x:y")
	env, _ := os.ReadFile(filepath.Join(fake.dir, "last.env"))
	if strings.Contains(string(env), secrets.EnvKey) || !strings.Contains(string(env), "SHIPIT_TEST_VISIBLE=yes") {
		t.Fatalf("local docker environment:\n%s", env)
	}
}

// A layer counts as present only on top of the same parents (its chain ID),
// and a containerd-store host gets every layer of an image it lacks.
func TestMakePlan(t *testing.T) {
	a, b, c := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64), "sha256:"+strings.Repeat("c", 64)
	img := &localImage{Ref: "x:1", ID: "sha256:" + strings.Repeat("1", 64), DiffIDs: []string{a, b, c}}
	img.chain = chainIDs(img.DiffIDs)
	other := chainIDs([]string{c}) // c as a base layer elsewhere: a different chain
	st := &hostState{ids: map[string]bool{}, chains: map[string]bool{img.chain[0]: true, other[0]: true}, staged: map[string]string{b: strings.Repeat("b", 64) + ".tar"}}
	p := makePlan([]*localImage{img}, st)
	if p.skipped != 1 || strings.Join(p.reuse, ",") != b || strings.Join(p.send, ",") != c || len(p.load) != 1 {
		t.Fatalf("plan: skipped %d, reuse %v, send %v", p.skipped, p.reuse, p.send)
	}
	st.containerd = true
	p = makePlan([]*localImage{img}, st)
	if p.skipped != 0 || len(p.send)+len(p.reuse) != 3 {
		t.Fatalf("containerd plan: skipped %d, reuse %v, send %v", p.skipped, p.reuse, p.send)
	}
	// A containerd store named the image after its own manifest when shipit
	// loaded it: the record of that load makes it present.
	hostID := "sha256:" + strings.Repeat("9", 64)
	st.ids[hostID] = true
	st.loaded = map[string]string{img.ID: hostID}
	p = makePlan([]*localImage{img}, st)
	if len(p.present) != 1 || p.hostIDs[img] != hostID || len(p.load) != 0 {
		t.Fatalf("containerd plan of a recorded image: present %d as %q, load %d", len(p.present), p.hostIDs[img], len(p.load))
	}
	st.ids[img.ID] = true
	if p = makePlan([]*localImage{img}, st); len(p.present) != 1 || len(p.load) != 0 {
		t.Fatalf("present image planned for load: %+v", p)
	}
}

// Should an engine's legacy metadata not mark the top layer, the first pass
// misses the layer and a second one finds it by hashing.
func TestTransferLegacyWithoutV1Config(t *testing.T) {
	requireDocker(t)
	r := testRand()
	a := newLayer(t, "a-"+r, 64<<10)
	base := newImage("shipit-xfer-test-"+r+":base", a)
	im := newImage("shipit-xfer-test-"+r+":nocfg", a, newLayer(t, "b-"+r, 64<<10))
	rmiOnCleanup(t, base.Ref, im.Ref)
	fake := newFakeLocal(t)
	fake.add(legacySave(t, base), []string{base.configDigest()}, base)
	fake.add(legacySaveOpt(t, false, im), []string{im.configDigest()}, im)
	h := testHost(t, newConn(t))
	if _, err := NewSender(Options{}).Transfer(context.Background(), h, []string{base.Ref}); err != nil {
		t.Fatal(err)
	}
	s := NewSender(Options{})
	defer s.Close()
	res, err := s.Transfer(context.Background(), h, []string{im.Ref})
	if err != nil || res.LayersSent != 1 || hostID(im.Ref) != im.configDigest() {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if n := strings.Count(fake.calls(), "save"); n != 3 {
		t.Fatalf("docker save ran %d times, want 1 + 2:\n%s", n, fake.calls())
	}
}

// A host with gzip gets layers decompressed as they arrive (docker load then
// skips its own decompression); a host without it gets them compressed.
// Either way the engine ends up with the image, by its ID.
func TestTransferUnpacksWhereTheHostHasGzip(t *testing.T) {
	requireDocker(t)
	for _, withGzip := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", withGzip), func(t *testing.T) {
			r := testRand()
			im := newImage("shipit-xfer-test-"+r+":gz", newLayer(t, "a-"+r, 256<<10), newLayer(t, "b-"+r, 512<<10))
			rmiOnCleanup(t, im.Ref)
			fake := newFakeLocal(t)
			fake.add(legacySave(t, im), []string{im.configDigest()}, im)
			c := newConn(t)
			if !withGzip {
				c.Env = []string{"PATH=" + pathWithout(t, "gzip")}
			}
			res, err := NewSender(Options{}).Transfer(context.Background(), testHost(t, c), []string{im.Ref})
			if err != nil {
				t.Fatal(err)
			}
			if res.LayersSent != 2 || hostID(im.Ref) != im.configDigest() {
				t.Fatalf("transfer: %+v, host id %s", res, hostID(im.Ref))
			}
			cmds := strings.Join(c.Commands(), "\n")
			if unpacked := strings.Contains(cmds, "gzip -dc >"); unpacked != withGzip {
				t.Fatalf("gzip on the host: %v, layers unpacked on arrival: %v\n%s", withGzip, unpacked, cmds)
			}
			if !withGzip && !strings.Contains(cmds, ".gz.part-") {
				t.Fatalf("layers not staged compressed on a host without gzip:\n%s", cmds)
			}
		})
	}
}

// pathWithout is a PATH of links to the commands the host side uses, but
// not to the one left out.
func pathWithout(t *testing.T, leave string) string {
	dir := t.TempDir()
	for _, name := range []string{"docker", "tar", "cat", "wc", "tr", "mv", "rm", "mkdir", "sort", "xargs", "gzip"} {
		if name == leave {
			continue
		}
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		must(t, os.Symlink(p, filepath.Join(dir, name)))
	}
	return dir
}

// An image this process has just built is saved while the host is still
// asked what it has, and that one save serves the transfer; an image built
// before is saved only once a host wants it, and a host that has the image
// stops the early save.
func TestTransferSavesNewImagesAhead(t *testing.T) {
	requireDocker(t)
	r := testRand()
	fresh := newImage("shipit-xfer-test-"+r+":new", newLayer(t, "a-"+r, 256<<10))
	old := newImage("shipit-xfer-test-"+r+":old", newLayer(t, "b-"+r, 256<<10))
	rmiOnCleanup(t, fresh.Ref, old.Ref)
	fake := newFakeLocal(t)
	fake.add(legacySave(t, fresh), []string{fresh.configDigest()}, fresh)
	fake.add(legacySave(t, old), []string{old.configDigest()}, old)
	built.Store(fresh.configDigest(), struct{}{})
	t.Cleanup(func() { built.Delete(fresh.configDigest()) })

	transfer := func(im *fxImage) (string, *Sender) {
		t.Helper()
		var log strings.Builder
		var mu sync.Mutex
		s := NewSender(Options{Logf: func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&log, f+"\n", a...); mu.Unlock() }})
		t.Cleanup(func() { s.Close() })
		before := strings.Count(fake.calls(), "save")
		if _, err := s.Transfer(context.Background(), testHost(t, newConn(t)), []string{im.Ref}); err != nil {
			t.Fatal(err)
		}
		if hostID(im.Ref) != im.configDigest() {
			t.Fatalf("%s not on the host", im.Ref)
		}
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d saves\n%s", strings.Count(fake.calls(), "save")-before, log.String()), s
	}
	if got, _ := transfer(fresh); !strings.HasPrefix(got, "1 saves") || !strings.Contains(got, "ahead of the hosts' answers") {
		t.Fatalf("new image: %s", got)
	}
	if got, _ := transfer(old); !strings.HasPrefix(got, "1 saves") || strings.Contains(got, "ahead") {
		t.Fatalf("image built before: %s", got)
	}
	// The host has the new image now: the early save is stopped, not read.
	got, s := transfer(fresh)
	if !strings.HasPrefix(got, "1 saves") || !strings.Contains(got, "ahead") || strings.Contains(got, " read in ") {
		t.Fatalf("image the host has: %s", got)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.early != nil {
		t.Fatal("an early save is left waiting after the host needed none")
	}
}

// On a containerd store a layer is skipped only when its chain is there and
// a blob of it that shipit loaded is still referenced by an image there:
// the new image then names only blobs the store keeps.
func TestMakePlanContainerdNamesKeptBlobs(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	img := &localImage{Ref: "x:1", ID: "sha256:" + strings.Repeat("1", 64), DiffIDs: []string{a, b}}
	img.chain = chainIDs(img.DiffIDs)
	kept, gone := "sha256:"+strings.Repeat("7", 64), "sha256:"+strings.Repeat("8", 64)
	st := &hostState{containerd: true, ids: map[string]bool{kept: true}, chains: map[string]bool{img.chain[0]: true, img.chain[1]: true},
		staged: map[string]string{}, loaded: map[string]string{}, blobs: map[string][]blobRecord{
			a: {{Digest: "sha256:" + strings.Repeat("c", 64), Size: 10, Image: gone}, {Digest: "sha256:" + strings.Repeat("d", 64), Size: 11, Image: kept}},
			b: {{Digest: "sha256:" + strings.Repeat("e", 64), Size: 12, Image: gone}},
		}}
	p := makePlan([]*localImage{img}, st)
	if p.skipped != 1 || strings.Join(p.send, ",") != b {
		t.Fatalf("plan: skipped %d, send %v; want a skipped (its blob kept), b sent (its image gone)", p.skipped, p.send)
	}
	if r, ok := st.recorded(a); !ok || r.Size != 11 {
		t.Fatalf("recorded(a) = %+v, %v", r, ok)
	}
}

func TestFullName(t *testing.T) {
	for ref, want := range map[string]string{
		"web:1":                    "docker.io/library/web:1",
		"app/web:2026":             "docker.io/app/web:2026",
		"registry.example.com/a:b": "registry.example.com/a:b",
		"localhost/a:b":            "localhost/a:b",
		"localhost:5000/a/b:c":     "localhost:5000/a/b:c",
		"blog-api/web:20261126-1":  "docker.io/blog-api/web:20261126-1",
	} {
		if got := fullName(ref); got != want {
			t.Errorf("fullName(%q) = %q, want %q", ref, got, want)
		}
	}
}
