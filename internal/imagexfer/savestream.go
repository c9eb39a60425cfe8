package imagexfer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/shipit-dev/shipit/internal/text"
)

// A `docker save` stream comes in one of two layouts, and the sender reads both:
//
//   - legacy (Engine ≤ 24 with a graph driver, e.g. Debian's 20.10):
//     <v1id>/layer.tar (uncompressed), <v1id>/json, <v1id>/VERSION,
//     <config-digest-hex>.json, manifest.json, repositories. Entries come in
//     lexical order and a v1id says nothing about the layer's diffID, so a
//     layer is only known once it has been read and hashed;
//   - OCI (Engine ≥ 25; with the containerd image store): oci-layout,
//     index.json, manifest.json and blobs/sha256/<digest>. With a graph
//     driver a layer blob is the uncompressed tar, named by its diffID; with
//     the containerd store it is usually gzip (or zstd) and named by the
//     digest of the compressed bytes, so again only hashing the decompressed
//     content tells which layer it is.
//
// Layers that are known by name are compressed straight from the stream when
// some host wants them and skipped otherwise. Layers known only after hashing
// are spooled raw while wanted layers are still unaccounted for, and dropped
// as soon as their hash says nobody wants them.

var (
	reHex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	maxJSONBlob = int64(16 << 20) // configs and manifests are far smaller
)

// layerWants is how a save pass asks the sender what to keep.
type layerWants interface {
	// claim returns a new blob to fill for diffID when some host wants that
	// layer and nobody produced it yet, else nil.
	claim(diffID string, rawSize int64) *blob
	// pending reports whether wanted layers are still unaccounted for, in
	// which case layers that are only identified by hashing must be spooled.
	pending() bool
	// isWanted reports whether diffID is wanted and not produced yet.
	isWanted(diffID string) bool
}

// saveContents is what a pass learned besides the layers it produced.
type saveContents struct {
	jsons map[string][]byte // entry name -> content: configs, manifests, index
	sizes map[string]int64  // diffID -> uncompressed size of the layers seen
}

// compression of a layer entry, from its first bytes.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstded
)

func sniff(b []byte) compression {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return gzipped
	case len(b) >= 4 && bytes.Equal(b[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zstded
	}
	return uncompressed
}

// entryKind classifies a file of a save stream by its name.
type entryKind int

const (
	entrySkip    entryKind = iota // VERSION, repositories, oci-layout
	entryJSON                     // config, manifest.json, index.json
	entryLayer                    // <v1id>/layer.tar
	entryV1JSON                   // <v1id>/json: a legacy layer's metadata
	entryBlob                     // blobs/sha256/<hex>: JSON or a layer
	entryUnknown                  // anything else: skipped
)

func classify(name string) entryKind {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case name == "manifest.json" || name == "index.json":
		return entryJSON
	case name == "repositories" || name == "oci-layout":
		return entrySkip
	case dir == "" && strings.HasSuffix(base, ".json") && reHex64.MatchString(strings.TrimSuffix(base, ".json")):
		return entryJSON
	case reHex64.MatchString(dir) && base == "layer.tar":
		return entryLayer
	case reHex64.MatchString(dir) && base == "json":
		return entryV1JSON
	case reHex64.MatchString(dir) && base == "VERSION":
		return entrySkip
	case strings.HasPrefix(dir, "blobs/") && reHex64.MatchString(base):
		return entryBlob
	}
	return entryUnknown
}

// extractor reads one save stream.
type extractor struct {
	ctx      context.Context
	wants    layerWants
	known    map[string]bool // every diffID of the images saved
	spoolDir string
	compress func(b *blob, src io.Reader) error // compresses src into b; does not finish b
	// async runs a function in the background (the sender bounds how many
	// compressions run at once); nil runs it inline.
	async func(func())
	// done reports whether the stream may be abandoned early.
	done func(*saveContents) bool
	// single is the image saved when the stream holds exactly one: its
	// legacy v1 metadata then tells where its layers are (see legacyIndex).
	single *localImage

	legacy  legacyIndex
	spooled int // layers spooled raw (for tests)
}

// legacyIndex infers which layer a legacy v1 directory holds, from the
// metadata that precedes layer.tar in the same directory. Since Docker 1.10
// the engine writes the image's own config into the json of the top layer
// only ("config"), and every json names its parent directory: the top is
// known on sight, and each parent is one layer down. This lets a pass for a
// new top layer (the usual redeploy) compress it straight from the stream
// and skip every other layer unread, instead of hashing and spooling them.
type legacyIndex struct {
	index  map[string]int    // v1 dir -> layer index
	parent map[string]string // v1 dir -> parent v1 dir
	notTop map[string]bool   // dirs whose json says they are not the top layer
}

func (li *legacyIndex) set(dir string, k int) {
	if _, ok := li.index[dir]; ok || k < 0 {
		return
	}
	li.index[dir] = k
	if p, ok := li.parent[dir]; ok && p != "" {
		li.set(p, k-1)
	}
}

// sawJSON records <dir>/json of an image with n layers.
func (li *legacyIndex) sawJSON(dir string, b []byte, n int) {
	if li.index == nil {
		li.index, li.parent, li.notTop = map[string]int{}, map[string]string{}, map[string]bool{}
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	var parent string
	_ = json.Unmarshal(m["parent"], &parent)
	if reHex64.MatchString(parent) {
		li.parent[dir] = parent
	}
	if c, ok := m["config"]; ok && string(c) != "null" {
		li.set(dir, n-1)
	} else {
		li.notTop[dir] = true
	}
	if k, ok := li.index[dir]; ok && li.parent[dir] != "" {
		li.set(li.parent[dir], k-1)
	}
}

// errStopEarly ends a pass that has everything it needs.
var errStopEarly = errors.New("imagexfer: save stream no longer needed")

// run reads the tar stream r to its end (or until done says stop).
func (x *extractor) run(r io.Reader) (*saveContents, error) {
	res := &saveContents{jsons: map[string][]byte{}, sizes: map[string]int64{}}
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 64<<10)
	for {
		if err := x.ctx.Err(); err != nil {
			return res, err
		}
		if x.done != nil && x.done(res) {
			return res, errStopEarly
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("reading docker save stream: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // directories; symlinks stand for layers stored elsewhere in the stream
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		kind := classify(name)
		if kind == entryBlob {
			br.Reset(tr)
			head, _ := br.Peek(1)
			hexd := path.Base(name)
			switch {
			case x.known["sha256:"+hexd]:
				if err := x.namedLayer("sha256:"+hexd, hdr.Size, br); err != nil {
					return res, err
				}
				res.sizes["sha256:"+hexd] = hdr.Size
				continue
			case hdr.Size <= maxJSONBlob && len(head) == 1 && head[0] == '{':
				b, err := io.ReadAll(br)
				if err != nil {
					return res, fmt.Errorf("reading %s: %w", name, err)
				}
				res.jsons[name] = b
				continue
			}
			if err := x.hashedLayer(name, hdr.Size, br, res); err != nil {
				return res, err
			}
			continue
		}
		switch kind {
		case entryJSON:
			if hdr.Size > maxJSONBlob {
				return res, fmt.Errorf("docker save stream: %s is %d bytes, too large for metadata", name, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return res, fmt.Errorf("reading %s: %w", name, err)
			}
			res.jsons[name] = b
		case entryV1JSON:
			b, err := io.ReadAll(io.LimitReader(tr, maxJSONBlob))
			if err != nil {
				return res, fmt.Errorf("reading %s: %w", name, err)
			}
			if x.single != nil {
				x.legacy.sawJSON(path.Dir(name), b, len(x.single.DiffIDs))
			}
		case entryLayer:
			if x.single != nil {
				dir := path.Dir(name)
				if k, ok := x.legacy.index[dir]; ok {
					d := x.single.DiffIDs[k]
					if err := x.namedLayer(d, hdr.Size, tr); err != nil {
						return res, err
					}
					res.sizes[d] = hdr.Size
					continue
				}
				if x.legacy.notTop[dir] && !x.lowerWanted() {
					continue // not the top layer, and nothing below it is wanted
				}
			}
			br.Reset(tr)
			if err := x.hashedLayer(name, hdr.Size, br, res); err != nil {
				return res, err
			}
		}
		// entrySkip, entryUnknown: the tar reader skips the rest.
	}
}

// lowerWanted reports whether a layer of the single image other than its
// top one is wanted.
func (x *extractor) lowerWanted() bool {
	ids := x.single.DiffIDs
	for _, d := range ids[:len(ids)-1] {
		if x.wants.isWanted(d) {
			return true
		}
	}
	return false
}

// namedLayer handles a layer whose diffID its name gives: compressed straight
// from the stream when wanted, skipped otherwise.
func (x *extractor) namedLayer(diffID string, size int64, r io.Reader) error {
	b := x.wants.claim(diffID, size)
	if b == nil {
		return nil
	}
	h := sha256.New()
	err := x.compress(b, io.TeeReader(r, h))
	if err == nil {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
			err = fmt.Errorf("docker save stream: layer %s has content %s", text.Short(diffID), text.Short(got))
		}
	}
	b.finish(err)
	return err
}

// hashedLayer handles a layer known only after hashing its uncompressed
// content: spooled raw while wanted layers are unaccounted for.
func (x *extractor) hashedLayer(name string, size int64, br *bufio.Reader, res *saveContents) error {
	head, _ := br.Peek(4)
	comp := sniff(head)
	var spool *os.File
	if x.wants.pending() {
		f, err := os.CreateTemp(x.spoolDir, "raw-*")
		if err != nil {
			return fmt.Errorf("local spool: %w", err)
		}
		spool = f
		os.Remove(f.Name()) // unlinked: gone with the process whatever happens
		x.spooled++
	}
	var raw io.Reader = br
	if spool != nil {
		raw = io.TeeReader(br, spool)
	}
	h := sha256.New()
	var rawSize int64
	var err error
	switch comp {
	case uncompressed:
		rawSize, err = io.Copy(h, raw)
	case gzipped:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(raw); err == nil {
			rawSize, err = io.Copy(h, zr)
			zr.Close()
		}
	case zstded:
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(raw, zstd.WithDecoderConcurrency(1)); err == nil {
			rawSize, err = io.Copy(h, zr)
			zr.Close()
		}
	}
	if err == nil {
		_, err = io.Copy(io.Discard, raw) // trailing bytes of a compressed blob
	}
	if err != nil {
		if spool != nil {
			spool.Close()
		}
		return fmt.Errorf("reading layer %s of the docker save stream: %w", name, err)
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))
	res.sizes[diffID] = rawSize
	if spool == nil {
		return nil
	}
	b := x.wants.claim(diffID, rawSize)
	if b == nil {
		spool.Close()
		return nil
	}
	work := func() {
		defer spool.Close()
		src := io.NewSectionReader(spool, 0, size)
		var err error
		switch comp {
		case gzipped:
			// Already what the host's engine reads: sent as it is.
			_, err = io.Copy(b, src)
			b.consumed(int(rawSize))
		case zstded:
			// Engine 20.10 reads gzip, bzip2 and xz only: recompress.
			var zr *zstd.Decoder
			if zr, err = zstd.NewReader(src); err == nil {
				err = x.compress(b, zr)
				zr.Close()
			}
		default:
			err = x.compress(b, src)
		}
		b.finish(err)
	}
	if x.async != nil {
		x.async(work)
	} else {
		work()
	}
	return nil
}

// configFor finds the image config of img among the JSON entries of a save
// stream: by name (legacy <hex>.json, OCI blob named by the image ID), via the
// manifest or index the image ID names (containerd image store), or as the one
// config whose rootfs matches. It returns the config and its digest.
func configFor(c *saveContents, img *localImage) ([]byte, string, error) {
	idHex := strings.TrimPrefix(img.ID, "sha256:")
	candidates := []string{idHex + ".json", "blobs/sha256/" + idHex}
	for _, name := range candidates {
		if b, ok := c.jsons[name]; ok && isConfigFor(b, img.DiffIDs) {
			return b, digestOf(b), nil
		}
	}
	// The ID names a manifest or an index (containerd image store).
	if b, ok := c.jsons["blobs/sha256/"+idHex]; ok {
		if cfg := configViaManifest(c, b, img.DiffIDs, 0); cfg != nil {
			return cfg, digestOf(cfg), nil
		}
	}
	var found []byte
	for _, b := range c.jsons {
		if isConfigFor(b, img.DiffIDs) {
			if found != nil && !bytes.Equal(found, b) {
				return nil, "", fmt.Errorf("docker save stream of %s: several image configs with its layers", img.Ref)
			}
			found = b
		}
	}
	if found == nil {
		return nil, "", fmt.Errorf("docker save stream of %s: no image config for it", img.Ref)
	}
	return found, digestOf(found), nil
}

func configViaManifest(c *saveContents, b []byte, diffIDs []string, depth int) []byte {
	if depth > 3 {
		return nil
	}
	var m struct {
		Config    struct{ Digest string }   `json:"config"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	if m.Config.Digest != "" {
		cfg := c.jsons["blobs/"+strings.Replace(m.Config.Digest, ":", "/", 1)]
		if cfg != nil && isConfigFor(cfg, diffIDs) {
			return cfg
		}
	}
	for _, d := range m.Manifests {
		if sub, ok := c.jsons["blobs/"+strings.Replace(d.Digest, ":", "/", 1)]; ok {
			if cfg := configViaManifest(c, sub, diffIDs, depth+1); cfg != nil {
				return cfg
			}
		}
	}
	return nil
}

// isConfigFor reports whether b is an image config with exactly diffIDs.
func isConfigFor(b []byte, diffIDs []string) bool {
	var c struct {
		RootFS *struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(b, &c) != nil || c.RootFS == nil || len(c.RootFS.DiffIDs) != len(diffIDs) {
		return false
	}
	for i := range diffIDs {
		if c.RootFS.DiffIDs[i] != diffIDs[i] {
			return false
		}
	}
	return true
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// chainIDs returns the chain ID of each layer: what an engine keys its
// layers by (a layer is only reusable on top of the same parents).
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digestOf([]byte(out[i-1] + " " + d))
	}
	return out
}
