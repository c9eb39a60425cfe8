package imagexfer

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/internal/text"
)

// fakeWants wants some layers and records what the extractor produced.
type fakeWants struct {
	mu     sync.Mutex
	want   map[string]bool
	blobs  map[string]*blob
	dir    string
	claims []string
}

func (w *fakeWants) claim(d string, size int64) *blob {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.want[d] {
		return nil
	}
	delete(w.want, d)
	b, err := newBlob(w.dir, d, size)
	if err != nil {
		panic(err)
	}
	w.blobs[d] = b
	w.claims = append(w.claims, d)
	return b
}

func (w *fakeWants) isWanted(d string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.want[d]
}

func (w *fakeWants) pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.want) > 0
}

func extractAll(t *testing.T, stream []byte, known []string, want ...string) (*fakeWants, *saveContents) {
	w, res, _ := extractSingle(t, stream, nil, known, want...)
	return w, res
}

// extractSingle extracts from a stream of one image (single != nil) and
// also returns how many layers were spooled raw.
func extractSingle(t *testing.T, stream []byte, single *localImage, known []string, want ...string) (*fakeWants, *saveContents, int) {
	t.Helper()
	w := &fakeWants{want: map[string]bool{}, blobs: map[string]*blob{}, dir: t.TempDir()}
	for _, d := range want {
		w.want[d] = true
	}
	k := map[string]bool{}
	for _, d := range known {
		k[d] = true
	}
	s := NewSender(Options{})
	x := &extractor{ctx: context.Background(), wants: w, known: k, spoolDir: t.TempDir(), compress: s.compress, single: single}
	res, err := x.run(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	return w, res, x.spooled
}

func blobBytes(t *testing.T, b *blob) []byte {
	t.Helper()
	if _, _, err := b.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := b.reader(context.Background())
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkExtracted(t *testing.T, w *fakeWants, layers ...fxLayer) {
	t.Helper()
	if len(w.blobs) != len(layers) {
		t.Fatalf("produced %d layers, want %d (claims %v)", len(w.blobs), len(layers), w.claims)
	}
	for _, l := range layers {
		b := w.blobs[l.diffID]
		if b == nil {
			t.Fatalf("layer %s not produced", text.Short(l.diffID))
		}
		if got := gunzip(t, blobBytes(t, b)); !bytes.Equal(got, l.tar) {
			t.Fatalf("layer %s: decompressed blob differs from the layer tar", text.Short(l.diffID))
		}
	}
}

func TestClassify(t *testing.T) {
	h := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for name, want := range map[string]entryKind{
		"manifest.json": entryJSON, "index.json": entryJSON, h + ".json": entryJSON, "./" + h + ".json": entryJSON,
		h + "/layer.tar": entryLayer, h + "/json": entryV1JSON, h + "/VERSION": entrySkip,
		"repositories": entrySkip, "oci-layout": entrySkip, "blobs/sha256/" + h: entryBlob,
		"blobs/sha256/xyz": entryUnknown, "etc/passwd": entryUnknown, "abc.json": entryUnknown,
	} {
		if got := classify(name); got != want {
			t.Errorf("classify(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestChainIDs(t *testing.T) {
	// Chain IDs of a real Engine 20.10 image (shipit-busybox base + a layer):
	// sha256(parent_chain + " " + diff_id).
	a := "sha256:" + "a"
	b := "sha256:" + "b"
	got := chainIDs([]string{a, b})
	if got[0] != a || got[1] != digestOf([]byte(a+" "+b)) {
		t.Fatalf("chainIDs = %v", got)
	}
}

// Legacy layout: layers are only known by hashing; the wanted one is
// produced (from the raw spool), the others only hashed; the config is found
// by name; a layer saved twice is a symlink and does not confuse it.
func TestExtractLegacyLayout(t *testing.T) {
	base := newLayer(t, "base", 300<<10)
	p1 := newLayer(t, "p1", 200<<10)
	p2 := newLayer(t, "p2", 100<<10)
	a := newImage("app-web:1", base, p1)
	b := newImage("app-worker:1", base, p1, p2)
	stream := legacySave(t, a, b)
	w, res := extractAll(t, stream, append(a.diffIDs(), p2.diffID), p2.diffID)
	checkExtracted(t, w, p2)
	for _, im := range []*fxImage{a, b} {
		li := &localImage{Ref: im.Ref, ID: im.configDigest(), DiffIDs: im.diffIDs()}
		cfg, dg, err := configFor(res, li)
		if err != nil || !bytes.Equal(cfg, im.Config) || dg != im.configDigest() {
			t.Fatalf("config of %s: %v, digest %s", im.Ref, err, dg)
		}
	}
	for _, l := range []fxLayer{base, p1, p2} {
		if res.sizes[l.diffID] != int64(len(l.tar)) {
			t.Fatalf("size of %s = %d, want %d", text.Short(l.diffID), res.sizes[l.diffID], len(l.tar))
		}
	}
}

// OCI layout of a graph-driver engine: layer blobs are named by diffID, so
// the wanted one is compressed straight from the stream and the rest skipped
// without being hashed.
func TestExtractOCILayoutGraphDriver(t *testing.T) {
	base := newLayer(t, "base", 300<<10)
	p1 := newLayer(t, "p1", 200<<10)
	im := newImage("app-web:2", base, p1)
	stream, ids := ociSave(t, false, im)
	w, res := extractAll(t, stream, im.diffIDs(), p1.diffID)
	checkExtracted(t, w, p1)
	if _, hashed := res.sizes[base.diffID]; !hashed {
		t.Fatal("a layer named by its diffID should be recorded")
	}
	li := &localImage{Ref: im.Ref, ID: ids[0], DiffIDs: im.diffIDs()}
	if cfg, _, err := configFor(res, li); err != nil || !bytes.Equal(cfg, im.Config) {
		t.Fatalf("config: %v", err)
	}
}

// OCI layout of the containerd image store: gzip layer blobs named by their
// compressed digest, the image ID a manifest digest. The wanted layer is
// recognised by its decompressed content and sent as it is (already gzip).
func TestExtractOCILayoutContainerdStore(t *testing.T) {
	base := newLayer(t, "base", 300<<10)
	p1 := newLayer(t, "p1", 200<<10)
	im := newImage("app-web:3", base, p1)
	stream, ids := ociSave(t, true, im)
	if ids[0] == im.configDigest() {
		t.Fatal("fixture: containerd-store ID should be the manifest digest")
	}
	w, res := extractAll(t, stream, im.diffIDs(), p1.diffID)
	checkExtracted(t, w, p1)
	li := &localImage{Ref: im.Ref, ID: ids[0], DiffIDs: im.diffIDs()}
	cfg, dg, err := configFor(res, li)
	if err != nil || !bytes.Equal(cfg, im.Config) || dg != im.configDigest() {
		t.Fatalf("config via manifest: %v (%s)", err, dg)
	}
}

// Nothing wanted: nothing is spooled or compressed.
func TestExtractNothingWanted(t *testing.T) {
	im := newImage("app-web:4", newLayer(t, "a", 100<<10))
	w, res := extractAll(t, legacySave(t, im), im.diffIDs())
	if len(w.blobs) != 0 || len(res.jsons) == 0 {
		t.Fatalf("blobs %d, jsons %d", len(w.blobs), len(res.jsons))
	}
}

func TestConfigForAmbiguous(t *testing.T) {
	l := newLayer(t, "a", 1<<10)
	a, b := newImage("x:1", l), newImage("x:2", l)
	c := &saveContents{jsons: map[string][]byte{"blobs/sha256/" + hexOf(a.configDigest()): a.Config, "blobs/sha256/" + hexOf(b.configDigest()): b.Config}}
	// By ID: exact.
	if cfg, _, err := configFor(c, &localImage{Ref: "x:1", ID: a.configDigest(), DiffIDs: a.diffIDs()}); err != nil || !bytes.Equal(cfg, a.Config) {
		t.Fatalf("by id: %v", err)
	}
	// An unknown ID with two matching configs: refuse to guess.
	if _, _, err := configFor(c, &localImage{Ref: "x:3", ID: "sha256:00", DiffIDs: a.diffIDs()}); err == nil {
		t.Fatal("ambiguous configs accepted")
	}
}

func TestSniff(t *testing.T) {
	if sniff([]byte{0x1f, 0x8b, 8, 0}) != gzipped || sniff([]byte{0x28, 0xb5, 0x2f, 0xfd}) != zstded || sniff([]byte("base")) != uncompressed {
		t.Fatal("sniff")
	}
}

// A legacy save of one image: the top layer is known from its v1 json (the
// image config is there) and compressed from the stream; the layers under it
// are skipped unread. Lower layers are found too.
func TestExtractLegacySingleImage(t *testing.T) {
	l0, l1, l2 := newLayer(t, "l0", 300<<10), newLayer(t, "l1", 200<<10), newLayer(t, "l2", 100<<10)
	im := newImage("app-web:5", l0, l1, l2)
	li := &localImage{Ref: im.Ref, ID: im.configDigest(), DiffIDs: im.diffIDs()}
	stream := legacySave(t, im)

	w, _, spooled := extractSingle(t, stream, li, im.diffIDs(), l2.diffID)
	checkExtracted(t, w, l2)
	if spooled != 0 {
		t.Fatalf("%d layers spooled for a top layer known by its metadata", spooled)
	}

	// (l1 is known by its place under the top when the top's directory
	// comes first in the stream, else by its hash.)
	w, _, _ = extractSingle(t, stream, li, im.diffIDs(), l1.diffID, l2.diffID)
	checkExtracted(t, w, l1, l2)

	// Without the config in any json, every layer looks like a lower one and
	// is skipped: the sender's next pass reads by hash (see
	// TestTransferLegacyWithoutV1Config).
	w, _, _ = extractSingle(t, legacySaveOpt(t, false, im), li, im.diffIDs(), l2.diffID)
	checkExtracted(t, w)
}
