// Package imagexfer moves locally built Docker images to hosts without a
// registry and without an ssh binary, sending only the layers a host's engine
// lacks.
//
// For each host it asks the engine which layer chains it holds (from every
// image it has, however it got them: an earlier deploy, a pull, a remote
// build), then streams only the missing layers, each gzip-compressed once on
// this machine (in parallel, klauspost/pgzip) and fanned out to every host that
// needs it. A layer lands in a staging directory on the host first, renamed
// into place only once complete; when every missing layer of the images is
// there, one `docker load` takes an archive of the image configs, a manifest
// and those layers only: the engine's loader skips a layer whose chain it
// already has without opening its file (moby image/tarexport, Engine 20.10 and
// later with a graph driver).
//
// A transfer cut half way leaves complete layers staged on the host and the
// engine untouched; the next transfer removes partial files and sends only
// what is still missing.
//
// Engines with the containerd image store import the legacy archive through
// containerd, which requires every layer file named by the manifest: for them
// the archive carries every layer (see docs/imagexfer.md).
package imagexfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/text"
)

// CommandError is a command that ran but exited non-zero, locally or on a host.
type CommandError = remote.CommandError

// ErrDockerMissing is wrapped by the error returned when the host has no docker.
var ErrDockerMissing = errors.New("docker is not installed")

// Options tune a Sender.
type Options struct {
	// Level is the gzip level of the layers sent (default 1, fastest: on
	// layer-sized inputs it is within a few percent of level 6's size).
	Level int
	// SpoolDir holds compressed layers while they are sent (default: the
	// user's cache dir). Files there are unlinked as soon as they are open.
	SpoolDir string
	// Uploads is how many layers go to one host at a time (default 2).
	Uploads int
	// Compressions bounds the layers compressed at once (default 2); each
	// uses every core.
	Compressions int
	// Logf receives debug lines; nil discards them.
	Logf func(format string, args ...any)
}

// Host is one destination of a transfer.
type Host struct {
	Conn remote.Conn
	// Docker is the host's docker command prefix ("docker", "sudo docker",
	// "docker -H unix:///x"); it is split on spaces and each word quoted.
	Docker string
	// StagingDir is a directory on the host where layers wait until they are
	// loaded. It must not be shared by two transfers running at once (the
	// deploy lock of an app guards its own directory). Its parent keeps
	// .image-ids (see idsFile).
	StagingDir string
	// Progress, when set, is called about four times a second while the
	// transfer runs and once at the end.
	Progress func(Progress)
}

// Phase of a host's transfer.
type Phase string

const (
	PhaseChecking Phase = "checking" // asking the host's engine what it has
	PhaseSending  Phase = "sending"  // streaming missing layers
	PhaseLoading  Phase = "loading"  // docker load on the host
	PhaseDone     Phase = "done"
)

// Progress is a snapshot of one host's transfer.
type Progress struct {
	Host       string
	Phase      Phase
	Images     []string // refs being transferred
	Layers     int      // layers to send
	LayersDone int      // layers sent and complete on the host
	Bytes      int64    // compressed bytes to send: estimated until every layer is compressed
	BytesSent  int64
	Rate       float64       // bytes per second since the first byte
	ETA        time.Duration // 0 when unknown
	Elapsed    time.Duration
}

// ImageResult is what happened to one image on a host.
type ImageResult struct {
	Ref    string
	Loaded bool // false: the host had the image, only tagged
	// Layers of this image; a layer two images share counts for the first.
	LayersSent, LayersReused, LayersSkipped int
	Bytes                                   int64 // compressed bytes of its layers sent
}

// Result reports a transfer to one host.
type Result struct {
	Host          string
	Images        []ImageResult
	Sent          []string // refs loaded into the host's engine
	Skipped       []string // refs the host already had (only tagged)
	LayersSent    int      // layers streamed by this transfer
	LayersReused  int      // complete layers found staged by an earlier, cut transfer
	LayersSkipped int      // layers the host's engine already had
	Bytes         int64    // compressed layer bytes sent
	Elapsed       time.Duration
	// Where the time went: asking the host, getting the layers there
	// (this includes the local docker save and compression), loading them.
	Check, Send, Load time.Duration
}

// localImage is what this machine's engine says about an image.
type localImage struct {
	Ref     string
	ID      string   // graph driver: the config digest; containerd store: manifest or index digest
	DiffIDs []string // uncompressed layer digests, base first
	chain   []string

	// From a save pass.
	config       []byte
	configDigest string
	configErr    error
}

// Sender transfers images to any number of hosts; one per command run, so
// that a layer needed by several hosts is read and compressed once. Safe for
// concurrent use.
type Sender struct {
	opts    Options
	compSem chan struct{}
	ctx     context.Context // save passes serve every host: Close, not a host, ends them
	cancel  context.CancelFunc
	passWG  sync.WaitGroup

	dirOnce sync.Once
	dir     string
	dirErr  error

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	images    map[string]*localImage
	blobs     map[string]*blob // diffID -> layer produced or being produced
	wanted    map[string]bool  // diffIDs some host waits for and no pass produced yet
	misses    map[string]int   // diffID -> passes that ended without it
	cfgWanted map[string]bool  // refs whose config some host waits for
	noInfer   bool             // a pass missed a layer: read layers by hash only
	running   bool
	closed    bool
	inspects  map[string]*inspectCall
	prefetch  map[string]*prefetched // prefetchKey -> inventory asked ahead
	early     *saveProc              // started before any host asked (see prestart)
	earlyDone bool                   // one early save per Sender
}

type inspectCall struct {
	done chan struct{}
	img  *localImage
	err  error
}

// NewSender returns a Sender; Close it to release its spool files early
// (they go with the process anyway).
func NewSender(opts Options) *Sender {
	if opts.Level == 0 {
		opts.Level = 1
	}
	if opts.Uploads <= 0 {
		opts.Uploads = 2
	}
	if opts.Compressions <= 0 {
		opts.Compressions = 2
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		ctx:       ctx,
		cancel:    cancel,
		opts:      opts,
		compSem:   make(chan struct{}, opts.Compressions),
		changed:   make(chan struct{}),
		images:    map[string]*localImage{},
		blobs:     map[string]*blob{},
		wanted:    map[string]bool{},
		misses:    map[string]int{},
		cfgWanted: map[string]bool{},
		inspects:  map[string]*inspectCall{},
		prefetch:  map[string]*prefetched{},
	}
}

// Close releases the spool files.
func (s *Sender) Close() error {
	s.cancel()
	s.passWG.Wait()
	s.dropEarly()
	s.mu.Lock()
	s.closed = true
	blobs := s.blobs
	s.blobs = map[string]*blob{}
	s.notifyLocked()
	s.mu.Unlock()
	for _, b := range blobs {
		b.close()
	}
	return nil
}

func (s *Sender) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sender) spoolDir() (string, error) {
	s.dirOnce.Do(func() {
		base := s.opts.SpoolDir
		if base == "" {
			if c, err := os.UserCacheDir(); err == nil {
				base = filepath.Join(c, "shipit")
			} else {
				base = os.TempDir()
			}
		}
		// Spool files are unlinked as soon as they are open (see newBlob),
		// so they share one directory and never pile up in it.
		if err := os.MkdirAll(base, 0o700); err != nil {
			s.dirErr = fmt.Errorf("local spool: %w", err)
			return
		}
		s.dir = base
	})
	return s.dir, s.dirErr
}

// image inspects ref on this machine once per Sender.
func (s *Sender) image(ctx context.Context, ref string) (*localImage, error) {
	s.mu.Lock()
	c, ok := s.inspects[ref]
	if !ok {
		c = &inspectCall{done: make(chan struct{})}
		s.inspects[ref] = c
		s.mu.Unlock()
		c.img, c.err = inspectLocal(ctx, ref)
		if c.err != nil && ctx.Err() != nil {
			s.mu.Lock()
			delete(s.inspects, ref) // cancelled: let another caller retry
			s.mu.Unlock()
		}
		if c.err == nil {
			s.mu.Lock()
			s.images[ref] = c.img
			s.mu.Unlock()
		}
		close(c.done)
	} else {
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.img, c.err
}

// want registers layers and configs some host needs and starts a save pass
// when none runs.
func (s *Sender) want(imgs []*localImage, layers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range layers {
		if b, ok := s.blobs[d]; ok {
			if _, done, err, _ := b.state(); !done || err == nil {
				continue
			}
			delete(s.blobs, d) // failed before: try again
		}
		s.wanted[d] = true
	}
	for _, img := range imgs {
		s.cfgWanted[img.Ref] = true
		if img.config == nil && img.configErr != nil {
			img.configErr = nil // failed before: try again
		}
	}
	if !s.running && s.workLocked() {
		s.running = true
		s.passWG.Add(1)
		go func() { defer s.passWG.Done(); s.passes() }()
	}
}

// workLocked reports whether a save pass has something to do.
func (s *Sender) workLocked() bool {
	if s.closed {
		return false
	}
	if len(s.wanted) > 0 {
		return true
	}
	for _, img := range s.images {
		if img.config == nil && img.configErr == nil && s.cfgWanted[img.Ref] {
			return true
		}
	}
	return false
}

// claim implements layerWants.
func (s *Sender) claim(diffID string, rawSize int64) *blob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.wanted[diffID] || s.closed {
		return nil
	}
	dir, err := s.spoolDir()
	var b *blob
	if err == nil {
		b, err = newBlob(dir, diffID, rawSize)
	}
	if err != nil {
		b = failedBlob(diffID, err)
	}
	delete(s.wanted, diffID)
	s.blobs[diffID] = b
	s.notifyLocked()
	return b
}

// isWanted implements layerWants.
func (s *Sender) isWanted(diffID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wanted[diffID]
}

// pending implements layerWants.
func (s *Sender) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wanted) > 0
}

// compress gzips src into b with every core, bounded by compSem.
func (s *Sender) compress(b *blob, src io.Reader) error {
	s.compSem <- struct{}{}
	defer func() { <-s.compSem }()
	zw, err := pgzip.NewWriterLevel(b, s.opts.Level)
	if err != nil {
		return err
	}
	// 1 MiB blocks, two per core in flight: a few MB of memory per layer.
	if err := zw.SetConcurrency(1<<20, 2*goruntime.GOMAXPROCS(0)); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := zw.Write(buf[:n]); err != nil {
				return err
			}
			b.consumed(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return zw.Close()
}

// passes runs `docker save` passes while hosts want layers or configs.
func (s *Sender) passes() {
	for {
		s.mu.Lock()
		if !s.workLocked() {
			s.running = false
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		// Save every image that holds a wanted layer or lacks its config.
		var imgs []*localImage
		for _, img := range s.images {
			need := img.config == nil && img.configErr == nil && s.cfgWanted[img.Ref]
			for _, d := range img.DiffIDs {
				need = need || s.wanted[d]
			}
			if need {
				imgs = append(imgs, img)
			}
		}
		sort.Slice(imgs, func(i, j int) bool { return imgs[i].Ref < imgs[j].Ref })
		s.mu.Unlock()

		err := s.savePass(imgs)

		s.mu.Lock()
		var lost []string
		for d := range s.wanted {
			s.misses[d]++
			s.noInfer = true // should legacy metadata ever mislead, hashing does not
			// A layer wanted after the pass had hashed and dropped it gets
			// one more pass; one that no pass finds does not exist here.
			if err != nil || s.misses[d] > 1 || !anyHas(imgs, d) {
				lost = append(lost, d)
			}
		}
		for _, d := range lost {
			e := err
			if e == nil {
				e = fmt.Errorf("local: layer %s is not in `docker save` of %s", text.Short(d), refsOf(imgs))
			}
			delete(s.wanted, d)
			s.blobs[d] = failedBlob(d, e)
		}
		for _, img := range imgs {
			if img.config == nil && img.configErr == nil && s.cfgWanted[img.Ref] {
				img.configErr = err
				if img.configErr == nil {
					img.configErr = fmt.Errorf("local: no image config for %s in `docker save`", img.Ref)
				}
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// sameLayers reports whether every image has the same layers (one image
// under several names, or several built alike).
func sameLayers(imgs []*localImage) bool {
	for _, img := range imgs[1:] {
		if strings.Join(img.DiffIDs, ",") != strings.Join(imgs[0].DiffIDs, ",") {
			return false
		}
	}
	return true
}

func anyHas(imgs []*localImage, diffID string) bool {
	for _, img := range imgs {
		for _, d := range img.DiffIDs {
			if d == diffID {
				return true
			}
		}
	}
	return false
}

func refsOf(imgs []*localImage) string {
	var r []string
	for _, img := range imgs {
		r = append(r, img.Ref)
	}
	return strings.Join(r, " ")
}

// savePass runs one local `docker save` of imgs and extracts what is wanted.
func (s *Sender) savePass(imgs []*localImage) error {
	if len(imgs) == 0 {
		return nil
	}
	dir, err := s.spoolDir()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, img := range imgs {
		for _, d := range img.DiffIDs {
			known[d] = true
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var wg sync.WaitGroup
	var single *localImage
	s.mu.Lock()
	infer := !s.noInfer
	s.mu.Unlock()
	if infer && (len(imgs) == 1 || sameLayers(imgs)) {
		single = imgs[0]
	}
	x := &extractor{
		ctx:      ctx,
		single:   single,
		wants:    s,
		known:    known,
		spoolDir: dir,
		compress: s.compress,
		async: func(fn func()) {
			wg.Add(1)
			go func() { defer wg.Done(); fn() }()
		},
		done: func(c *saveContents) bool {
			if s.pending() {
				return false
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, img := range imgs {
				if img.config == nil && s.cfgWanted[img.Ref] && !s.takeConfigLocked(c, img, true) {
					return false
				}
			}
			return true
		},
	}
	start := time.Now()
	refs := make([]string, len(imgs))
	for i, img := range imgs {
		refs[i] = img.Ref
	}
	proc := s.takeEarly(refs)
	if proc == nil {
		s.opts.Logf("local: docker save %s", strings.Join(refs, " "))
		if proc, err = startSave(ctx, refs); err != nil {
			return err
		}
	}
	res, err := proc.read(x.run)
	wg.Wait()
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, img := range imgs {
		if img.config == nil {
			s.takeConfigLocked(res, img, false)
		}
	}
	s.mu.Unlock()
	s.opts.Logf("local: docker save %s read in %s", strings.Join(refs, " "), time.Since(start).Round(time.Millisecond))
	return nil
}

// prestart starts `docker save` of the images this process has just built
// while hosts are still asked what they have: Engine 20.10 exports the
// whole image to a temp dir before the first byte (1.3 s of the 215 MB
// benchmark image), and no host can hold an image whose ID did not exist
// before the build. Images built before are not saved ahead: an unchanged
// image costs no save.
func (s *Sender) prestart(imgs []*localImage) {
	var refs []string
	for _, img := range imgs {
		if builtNow(img.ID) {
			refs = append(refs, img.Ref)
		}
	}
	if len(refs) == 0 {
		return
	}
	sort.Strings(refs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.running || s.earlyDone {
		return
	}
	s.earlyDone = true
	if p, err := startSave(s.ctx, refs); err == nil { // else the pass reports it
		s.opts.Logf("local: docker save %s (ahead of the hosts' answers)", strings.Join(refs, " "))
		s.early = p
	}
}

// takeEarly returns the early save if it is one of exactly refs, unread;
// an early save of other images is stopped.
func (s *Sender) takeEarly(refs []string) *saveProc {
	s.mu.Lock()
	p := s.early
	s.early = nil
	s.mu.Unlock()
	if p != nil && !slices.Equal(p.refs, refs) {
		p.stop()
		return nil
	}
	return p
}

// dropEarly stops an early save no pass has taken.
func (s *Sender) dropEarly() {
	s.mu.Lock()
	p := s.early
	s.early = nil
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// takeConfigLocked records img's config from c when it can be found; strict
// accepts only a config named by the image ID (safe before the stream ends).
func (s *Sender) takeConfigLocked(c *saveContents, img *localImage, strict bool) bool {
	if c == nil {
		return false
	}
	var cfg []byte
	var dg string
	var err error
	if strict {
		idHex := strings.TrimPrefix(img.ID, "sha256:")
		for _, name := range []string{idHex + ".json", "blobs/sha256/" + idHex} {
			if b, ok := c.jsons[name]; ok && isConfigFor(b, img.DiffIDs) {
				cfg, dg = b, digestOf(b)
			}
		}
		if cfg == nil {
			return false
		}
	} else if cfg, dg, err = configFor(c, img); err != nil {
		img.configErr = err
		return false
	}
	img.config, img.configDigest = cfg, dg
	s.notifyLocked()
	return true
}

// blobFor waits until the layer is being produced and returns it.
func (s *Sender) blobFor(ctx context.Context, diffID string) (*blob, error) {
	for {
		s.mu.Lock()
		b, ok := s.blobs[diffID]
		wanted, ch, closed := s.wanted[diffID], s.changed, s.closed
		s.mu.Unlock()
		if ok {
			return b, nil
		}
		if closed {
			return nil, errBlobClosed
		}
		if !wanted {
			return nil, fmt.Errorf("imagexfer: layer %s was never asked for", text.Short(diffID))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// configOf waits for img's config.
func (s *Sender) configOf(ctx context.Context, img *localImage) ([]byte, string, error) {
	for {
		s.mu.Lock()
		cfg, dg, err, ch := img.config, img.configDigest, img.configErr, s.changed
		s.mu.Unlock()
		if cfg != nil {
			return cfg, dg, nil
		}
		if err != nil {
			return nil, "", err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}
