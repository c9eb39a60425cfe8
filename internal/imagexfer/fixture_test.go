package imagexfer

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Test images are built here, byte by byte, in both `docker save` layouts:
// no builder, no registry, and content unique to each test run.

type fxLayer struct {
	tar    []byte // uncompressed layer tar
	diffID string
}

// newLayer is a layer with one file of n bytes: half random, half text, so
// that it compresses like a real one.
func newLayer(t testing.TB, name string, n int) fxLayer {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data[:n/2])
	r := mrand.New(mrand.NewPCG(uint64(n), 7))
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "layer ", "shipit ", "docker\n"}
	for i := n / 2; i < n; {
		w := words[r.IntN(len(words))]
		i += copy(data[i:], w)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}))
	_, err := tw.Write(data)
	must(t, err)
	must(t, tw.Close())
	return fxLayer{tar: buf.Bytes(), diffID: sha(buf.Bytes())}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

type fxImage struct {
	Ref    string
	Layers []fxLayer
	Config []byte
}

func newImage(ref string, layers ...fxLayer) *fxImage {
	var ids []string
	for _, l := range layers {
		ids = append(ids, l.diffID)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config":  map[string]any{"Cmd": []string{"/x"}, "Labels": map[string]string{"ref": ref}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": ids},
		"history": []map[string]any{{"created_by": "shipit test"}},
	})
	return &fxImage{Ref: ref, Layers: layers, Config: cfg}
}

func (im *fxImage) diffIDs() []string {
	var ids []string
	for _, l := range im.Layers {
		ids = append(ids, l.diffID)
	}
	return ids
}

func (im *fxImage) configDigest() string { return sha(im.Config) }

type tarEntry struct {
	name    string
	body    []byte
	symlink string
	dir     bool
}

func writeTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, ModTime: time.Unix(0, 0)}
		switch {
		case e.dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.symlink != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.symlink
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// legacySave is what Engine ≤ 24 `docker save` writes for imgs: one v1
// directory per layer chain, a symlink for a layer saved twice, the image's
// config in the top layer's json.
func legacySave(t testing.TB, imgs ...*fxImage) []byte { return legacySaveOpt(t, true, imgs...) }

// legacySaveOpt with topConfig false leaves "config" out of every v1 json,
// as tools other than the engine may.
func legacySaveOpt(t testing.TB, topConfig bool, imgs ...*fxImage) []byte {
	var es []tarEntry
	saved := map[string]string{} // diffID -> v1 dir
	var manifest []map[string]any
	repos := map[string]map[string]string{}
	for _, im := range imgs {
		var layers []string
		parent := ""
		for i, l := range im.Layers {
			v1 := hexOf(sha([]byte(parent + l.diffID + im.Ref)))
			if prev, ok := saved[l.diffID]; ok && prev != v1 {
				es = append(es, tarEntry{name: v1 + "/layer.tar", symlink: "../" + prev + "/layer.tar"})
			} else if !ok {
				es = append(es, tarEntry{name: v1 + "/layer.tar", body: l.tar})
				saved[l.diffID] = v1
			}
			meta := map[string]any{"id": v1, "created": "1970-01-01T00:00:00Z", "container_config": map[string]any{"Cmd": nil}}
			if parent != "" {
				meta["parent"] = parent
			}
			if topConfig && i == len(im.Layers)-1 {
				meta["created"], meta["config"] = "2026-01-01T00:00:00Z", map[string]any{"Cmd": []string{"/x"}}
			}
			j, _ := json.Marshal(meta)
			es = append(es, tarEntry{name: v1, dir: true}, tarEntry{name: v1 + "/VERSION", body: []byte("1.0")}, tarEntry{name: v1 + "/json", body: j})
			layers = append(layers, v1+"/layer.tar")
			parent = v1
		}
		es = append(es, tarEntry{name: hexOf(im.configDigest()) + ".json", body: im.Config})
		manifest = append(manifest, map[string]any{"Config": hexOf(im.configDigest()) + ".json", "RepoTags": []string{im.Ref}, "Layers": layers})
		name, tag, _ := strings.Cut(im.Ref, ":")
		repos[name] = map[string]string{tag: parent}
	}
	m, _ := json.Marshal(manifest)
	r, _ := json.Marshal(repos)
	es = append(es, tarEntry{name: "manifest.json", body: m}, tarEntry{name: "repositories", body: r})
	return writeTar(t, dedupe(es))
}

func dedupe(es []tarEntry) []tarEntry {
	seen := map[string]bool{}
	var out []tarEntry
	for _, e := range es {
		if !seen[e.name] {
			seen[e.name] = true
			out = append(out, e)
		}
	}
	return out
}

// ociSave is what Engine ≥ 25 writes. With gzipLayers (the containerd image
// store) layer blobs are gzip and named by their compressed digest, and the
// image ID is the manifest's digest; without, they are the uncompressed
// tars named by diffID (graph driver) and the ID is the config digest.
// It returns the stream and the image IDs the engine would report.
func ociSave(t testing.TB, gzipLayers bool, imgs ...*fxImage) ([]byte, []string) {
	var es []tarEntry
	var index []map[string]any
	var legacy []map[string]any
	var ids []string
	for _, im := range imgs {
		var descs []map[string]any
		var paths []string
		for _, l := range im.Layers {
			body, mt := l.tar, "application/vnd.oci.image.layer.v1.tar"
			if gzipLayers {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(l.tar)
				zw.Close()
				body, mt = z.Bytes(), mt+"+gzip"
			}
			d := sha(body)
			es = append(es, tarEntry{name: "blobs/sha256/" + hexOf(d), body: body})
			descs = append(descs, map[string]any{"mediaType": mt, "digest": d, "size": len(body)})
			paths = append(paths, "blobs/sha256/"+hexOf(d))
		}
		es = append(es, tarEntry{name: "blobs/sha256/" + hexOf(im.configDigest()), body: im.Config})
		man, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": im.configDigest(), "size": len(im.Config)},
			"layers": descs,
		})
		md := sha(man)
		es = append(es, tarEntry{name: "blobs/sha256/" + hexOf(md), body: man})
		index = append(index, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(man),
			"annotations": map[string]string{"io.containerd.image.name": "docker.io/library/" + im.Ref}})
		legacy = append(legacy, map[string]any{"Config": "blobs/sha256/" + hexOf(im.configDigest()), "RepoTags": []string{im.Ref}, "Layers": paths})
		if gzipLayers {
			ids = append(ids, md)
		} else {
			ids = append(ids, im.configDigest())
		}
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
	lm, _ := json.Marshal(legacy)
	es = append(es,
		tarEntry{name: "blobs", dir: true}, tarEntry{name: "blobs/sha256", dir: true},
		tarEntry{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		tarEntry{name: "index.json", body: idx}, tarEntry{name: "manifest.json", body: lm})
	return writeTar(t, dedupe(es)), ids
}

// fakeLocal is a local docker CLI that knows only the given images: `image
// inspect` and `save` answer from files, everything else fails. The real
// engine of this machine plays the host.
type fakeLocal struct {
	t   testing.TB
	dir string
	log string
}

func newFakeLocal(t testing.TB) *fakeLocal {
	dir := t.TempDir()
	f := &fakeLocal{t: t, dir: dir, log: filepath.Join(dir, "calls.log")}
	script := `#!/bin/sh
echo "$*" >>` + f.log + `
env >` + dir + `/last.env
case "$1 $2" in
"image inspect") eval "ref=\${$#}"; f=` + dir + `/inspect/$(printf %s "$ref" | tr ':/' '__'); [ -f "$f" ] && exec cat "$f"; echo "Error: No such image: $ref" >&2; exit 1;;
esac
if [ "$1" = save ]; then shift 2; f=` + dir + `/save/$(printf %s "$*" | tr ':/ ' '__+'); [ -e "$f" ] && exec cat "$f"; echo "Error: No such image: $*" >&2; exit 1; fi
echo "fake docker: unexpected $*" >&2; exit 2
`
	must(t, os.MkdirAll(filepath.Join(dir, "inspect"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "save"), 0o755))
	p := filepath.Join(dir, "docker")
	must(t, os.WriteFile(p, []byte(script), 0o755))
	old := localDocker
	localDocker = p
	t.Cleanup(func() { localDocker = old })
	return f
}

func fileKey(s string) string { return strings.NewReplacer(":", "_", "/", "_", " ", "+").Replace(s) }

// add makes the fake engine hold imgs, saved as stream (for exactly these refs).
func (f *fakeLocal) add(stream []byte, ids []string, imgs ...*fxImage) {
	var refs []string
	for i, im := range imgs {
		layers, _ := json.Marshal(im.diffIDs())
		must(f.t, os.WriteFile(filepath.Join(f.dir, "inspect", fileKey(im.Ref)), fmt.Appendf(nil, "%s %s\n", ids[i], layers), 0o644))
		refs = append(refs, im.Ref)
	}
	must(f.t, os.WriteFile(filepath.Join(f.dir, "save", fileKey(strings.Join(refs, " "))), stream, 0o644))
}

func (f *fakeLocal) calls() string {
	b, _ := os.ReadFile(f.log)
	return string(b)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	must(t, err)
	var out bytes.Buffer
	_, err = out.ReadFrom(zr)
	must(t, err)
	return out.Bytes()
}

func testRand() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// requireDocker fails the test when this machine's engine is not reachable:
// these tests need it, they never skip.
func requireDocker(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("docker engine not reachable (run scripts/testenv.sh): %v: %s", err, out)
	}
}
