package imagexfer

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shipit-dev/shipit/internal/shell"
	"github.com/shipit-dev/shipit/internal/text"
)

// Staging directory on a host:
//
//	<diffid-hex>.tar             a complete layer, decompressed on arrival
//	<diffid-hex>.gz              the same, still compressed (hosts without gzip,
//	                             containerd image store)
//	<diffid-hex>.*.part-<rand>   a layer being received (removed by the next run)
//	manifest.json, <hex>.json    the load archive's metadata (written just before it)
//
// A layer is renamed into place only after its size is checked, so a cut
// transfer leaves complete layers and partial files that the next transfer
// recognises, and removes.
//
// Layers cross the wire gzip-compressed either way. Where the host has gzip,
// it decompresses them while they arrive: Engine 20.10's docker load
// decompresses a layer with Go's single-threaded gzip before applying it,
// which took 1.1 s of a 54 MB layer's 1.2 s load here (0.45 s from a .tar),
// while gzip on the receiving end keeps up with the wire.

// hostState is what a host's engine and staging directory hold.
type hostState struct {
	containerd bool                    // containerd image store: load archives carry every layer
	ids        map[string]bool         // image IDs
	chains     map[string]bool         // layer chain IDs
	staged     map[string]string       // diffID -> file name in the staging directory
	loaded     map[string]string       // local image ID -> the ID a containerd store gave it (idsFile)
	blobs      map[string][]blobRecord // diffID -> blobs shipit loaded into a containerd store
	hasTar     bool
	hasGzip    bool
}

// blobRecord is a layer blob shipit loaded into a containerd store, as part
// of the host's image Image.
type blobRecord struct {
	Digest string
	Size   int64
	Image  string
}

// recorded returns a blob of the layer that an image still on the host
// references: the store keeps it, so a new image can name it without
// sending it again.
func (st *hostState) recorded(diffID string) (blobRecord, bool) {
	for _, r := range st.blobs[diffID] {
		if st.ids[r.Image] {
			return r, true
		}
	}
	return blobRecord{}, false
}

// unpacks says whether layers are decompressed on arrival on this host.
// A containerd image store keeps layers as they are loaded: there they stay
// compressed.
func (st *hostState) unpacks() bool { return st.hasGzip && !st.containerd }

// hostInventory asks the host's engine for its images' layers, lists the
// staging directory and removes what a cut transfer left half written.
func hostInventory(ctx context.Context, h Host, docker string) (*hostState, error) {
	dir := shell.Quote(h.StagingDir)
	cmd := "[ -f " + shell.Quote(idsFile(h)) + " ] && sed 's/^/R /' " + shell.Quote(idsFile(h)) + "; " +
		"out=$(" + docker + " info --format '{{json .DriverStatus}}' 2>&1); rc=$?; " +
		"if [ $rc -ne 0 ]; then printf '%s\\n' \"$out\" >&2; [ $rc -eq 127 ] && exit 127; exit 3; fi; " +
		"printf 'D %s\\n' \"$out\"; " +
		"ids=$(" + docker + " image ls -aq --no-trunc) || exit 3; " +
		"if [ -n \"$ids\" ]; then printf '%s\\n' \"$ids\" | sort -u | xargs " + docker +
		" image inspect --format " + shell.Quote("I {{.Id}}{{range .RootFS.Layers}} {{.}}{{end}}") + " 2>/dev/null; fi; " +
		"command -v tar >/dev/null 2>&1 && echo T; command -v gzip >/dev/null 2>&1 && echo Z; " +
		"if [ -d " + dir + " ]; then cd " + dir + " && rm -f -- *.part-* manifest.json *.json && " +
		"for f in *.tar *.gz; do [ -f \"$f\" ] && printf 'S %s %s\\n' \"$f\" \"$(wc -c <\"$f\" | tr -d ' ')\"; done; fi; exit 0"
	var stdout, stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, nil, &stdout, &stderr)
	if err != nil {
		return nil, fmt.Errorf("%s: asking docker which layers it has: %w", h.Conn.Name(), err)
	}
	if code == 127 {
		return nil, fmt.Errorf("imagexfer: %w on %s (%s): %s", ErrDockerMissing, h.Conn.Name(), docker, tail(stderr.String()))
	}
	if code != 0 {
		return nil, &CommandError{Host: h.Conn.Name(), Cmd: docker + " image inspect", Code: code, Stderr: tail(stderr.String())}
	}
	st := &hostState{ids: map[string]bool{}, chains: map[string]bool{}, staged: map[string]string{}, loaded: map[string]string{}, blobs: map[string][]blobRecord{}}
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "D":
			st.containerd = strings.Contains(line, "io.containerd.snapshotter")
		case "I":
			if len(f) < 2 {
				continue
			}
			st.ids[f[1]] = true
			for _, c := range chainIDs(f[2:]) {
				st.chains[c] = true
			}
		case "S":
			if len(f) != 3 {
				continue
			}
			hexID, ext := strings.TrimSuffix(f[1], path.Ext(f[1])), path.Ext(f[1])
			if _, err := strconv.ParseInt(f[2], 10, 64); err == nil && (ext == ".tar" || ext == ".gz") && len(hexID) == 64 {
				st.staged["sha256:"+hexID] = f[1]
			}
		case "R": // a line of idsFile
			switch {
			case len(f) == 3:
				st.loaded[f[1]] = f[2]
			case len(f) == 6 && f[1] == "layer":
				if n, err := strconv.ParseInt(f[4], 10, 64); err == nil {
					st.blobs[f[2]] = append(st.blobs[f[2]], blobRecord{Digest: f[3], Size: n, Image: f[5]})
				}
			}
		case "T":
			st.hasTar = true
		case "Z":
			st.hasGzip = true
		}
	}
	return st, nil
}

// plan is one host's share of a transfer.
type plan struct {
	perImage map[*localImage]*ImageResult
	load     []*localImage          // images the host lacks
	present  []*localImage          // images the host has by ID: only tagged
	hostIDs  map[*localImage]string // the host's ID of a present image
	send     []string               // diffIDs to stream, base first
	reuse    []string               // diffIDs staged complete by an earlier transfer
	skipped  int                    // layers the engine has
}

func makePlan(imgs []*localImage, st *hostState) *plan {
	p := &plan{perImage: map[*localImage]*ImageResult{}, hostIDs: map[*localImage]string{}}
	seen := map[string]bool{}
	for _, img := range imgs {
		ir := &ImageResult{Ref: img.Ref}
		p.perImage[img] = ir
		// A containerd store, here or on the host, names an image by a
		// manifest, not by its config: the record of earlier loads maps
		// the local ID to the host's.
		if id := cmp.Or(st.loaded[img.ID], img.ID); st.ids[id] {
			p.present = append(p.present, img)
			p.hostIDs[img] = id
			continue
		}
		ir.Loaded = true
		p.load = append(p.load, img)
		for i, d := range img.DiffIDs {
			if seen[d] {
				continue
			}
			// A containerd store needs, besides the layer, a blob it keeps
			// (see loadOCI).
			if _, rec := st.recorded(d); st.chains[img.chain[i]] && (!st.containerd || rec) {
				p.skipped++
				ir.LayersSkipped++
				continue
			}
			seen[d] = true
			if _, ok := st.staged[d]; ok && !st.containerd {
				p.reuse = append(p.reuse, d)
				ir.LayersReused++
			} else {
				p.send = append(p.send, d)
				ir.LayersSent++
			}
		}
	}
	return p
}

// tracker measures one host's transfer for Progress.
type tracker struct {
	h       Host
	start   time.Time
	first   atomic.Int64 // unix nanos of the first byte sent
	last    atomic.Int64 // and of the latest
	sent    atomic.Int64
	done    atomic.Int64
	phase   atomic.Value // Phase
	refs    []string
	mu      sync.Mutex
	blobs   []*blob // layers to send, for the byte total
	nLayers int
}

func (t *tracker) snapshot() Progress {
	t.mu.Lock()
	var total int64
	for _, b := range t.blobs {
		if b != nil {
			_, _, _, est := b.state()
			total += est
		}
	}
	n := t.nLayers
	t.mu.Unlock()
	p := Progress{
		Host: t.h.Conn.Name(), Phase: t.phase.Load().(Phase), Images: t.refs,
		Layers: n, LayersDone: int(t.done.Load()), Bytes: total, BytesSent: t.sent.Load(),
		Elapsed: time.Since(t.start),
	}
	if f, l := t.first.Load(), t.last.Load(); f > 0 {
		if el := time.Duration(l - f).Seconds(); el > 0.05 {
			p.Rate = float64(p.BytesSent) / el // over the sending, not the loading
		}
	}
	if p.Rate > 0 && p.Bytes > p.BytesSent {
		p.ETA = time.Duration(float64(p.Bytes-p.BytesSent) / p.Rate * float64(time.Second))
	}
	return p
}

func (t *tracker) report() {
	if t.h.Progress != nil {
		t.h.Progress(t.snapshot())
	}
}

type countingReader struct {
	r io.Reader
	t *tracker
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		now := time.Now().UnixNano()
		c.t.first.CompareAndSwap(0, now)
		c.t.last.Store(now)
		c.t.sent.Add(int64(n))
	}
	return n, err
}

// Transfer makes every ref (a local image) available on the host under the
// same name, sending only the layers the host's engine lacks.
func (s *Sender) Transfer(ctx context.Context, h Host, refs []string) (Result, error) {
	res := Result{Host: h.Conn.Name()}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	if len(refs) == 0 {
		return res, nil
	}
	if err := checkTransfer(h, refs); err != nil {
		return res, err
	}
	docker := dockerCmd(h)
	host := h.Conn.Name()

	tr := &tracker{h: h, start: start, refs: refs}
	tr.phase.Store(PhaseChecking)
	defer tr.reportEvery(250 * time.Millisecond)()
	wanted := false
	defer func() {
		if !wanted { // this host needs no save: do not leave one waiting
			s.dropEarly()
		}
	}()

	imgs, st, err := s.inventory(ctx, h, docker, refs)
	res.Check = time.Since(start)
	if err != nil {
		return res, err
	}

	p := makePlan(imgs, st)
	res.LayersSkipped = p.skipped
	if len(p.load) > 0 {
		if !st.hasTar {
			return res, &HostError{Host: host, Msg: "tar is not installed on the host", Fix: "install tar on " + host + " (shipit assembles the docker load archive there)"}
		}
		s.want(p.load, p.send)
		wanted = true
		tr.phase.Store(PhaseSending)
		tr.mu.Lock()
		tr.nLayers = len(p.send)
		tr.blobs = make([]*blob, len(p.send))
		tr.mu.Unlock()
		s.opts.Logf("%s: %d image(s) to load: %d layer(s) to send, %d staged earlier, %d already in the engine",
			host, len(p.load), len(p.send), len(p.reuse), p.skipped)
		t0 := time.Now()
		if err := s.upload(ctx, h, p, tr, st.unpacks()); err != nil {
			return res, err
		}
		res.LayersSent, res.LayersReused, res.Bytes = len(p.send), len(p.reuse), tr.sent.Load()
		tr.phase.Store(PhaseLoading)
		t1 := time.Now()
		res.Send = t1.Sub(t0)
		if err := s.load(ctx, h, docker, p, st); err != nil {
			return res, err
		}
		res.Load = time.Since(t1)
	}
	// (A load already removed the staging directory.)
	if len(p.present) > 0 || len(p.load) == 0 {
		if err := tagPresent(ctx, h, docker, p); err != nil {
			return res, err
		}
	}
	res.addImages(imgs, p, tr.sizes(p))
	return res, nil
}

// dockerCmd is h's docker command prefix, each word quoted.
func dockerCmd(h Host) string {
	words := strings.Fields(h.Docker)
	if len(words) == 0 {
		words = []string{"docker"}
	}
	return shell.Join(words...)
}

// prefetched is a host's inventory asked for ahead of its transfer.
type prefetched struct {
	done chan struct{}
	st   *hostState
	err  error
}

func prefetchKey(h Host, docker string) string {
	return h.Conn.Name() + "\x00" + h.StagingDir + "\x00" + docker
}

// Prefetch asks h's engine what it holds, in the background, for the next
// Transfer to h to use instead of asking again. A caller about to build the
// images on this machine calls it first: the question (a few docker
// commands on the host, half a second) then overlaps the build, which adds
// nothing to the host's engine. The caller holds h's deploy lock from here
// to the transfer, as for the transfer itself. A failed prefetch is asked
// again by Transfer.
func (s *Sender) Prefetch(ctx context.Context, h Host) {
	if h.StagingDir == "" || !path.IsAbs(h.StagingDir) {
		return // Transfer reports it
	}
	docker := dockerCmd(h)
	key := prefetchKey(h, docker)
	s.mu.Lock()
	if s.closed || s.prefetch[key] != nil {
		s.mu.Unlock()
		return
	}
	p := &prefetched{done: make(chan struct{})}
	s.prefetch[key] = p
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		p.st, p.err = hostInventory(ctx, h, docker)
	}()
}

// takePrefetch returns (once) the inventory Prefetch asked for h, waiting
// for it; false when there is none or it failed.
func (s *Sender) takePrefetch(ctx context.Context, h Host, docker string) (*hostState, bool) {
	key := prefetchKey(h, docker)
	s.mu.Lock()
	p := s.prefetch[key]
	delete(s.prefetch, key)
	s.mu.Unlock()
	if p == nil {
		return nil, false
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, false
	}
	if p.err != nil {
		s.opts.Logf("%s: prefetched inventory failed, asking again: %v", h.Conn.Name(), p.err)
		return nil, false
	}
	return p.st, true
}

// checkTransfer refuses a staging directory or image references that
// docker load cannot take.
func checkTransfer(h Host, refs []string) error {
	if h.StagingDir == "" || !path.IsAbs(h.StagingDir) {
		return fmt.Errorf("imagexfer: staging directory %q must be an absolute path", h.StagingDir)
	}
	for _, r := range refs {
		// docker load names images by name:tag only.
		if r == "" || strings.HasPrefix(r, "-") || strings.ContainsAny(r, " \t\n@") || strings.LastIndex(r, ":") < strings.LastIndex(r, "/")+1 {
			return fmt.Errorf("imagexfer: invalid image reference %q (want name:tag)", r)
		}
	}
	return nil
}

// reportEvery reports progress every d while a transfer runs (when the host
// has a progress callback); the returned func stops it and reports the end.
func (tr *tracker) reportEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	if tr.h.Progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(d)
			defer tk.Stop()
			for {
				select {
				case <-tk.C:
					tr.report()
				case <-done:
					return
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
		tr.phase.Store(PhaseDone)
		tr.report()
	}
}

// inventory reads the local images and the host's inventory, at the same
// time.
func (s *Sender) inventory(ctx context.Context, h Host, docker string, refs []string) ([]*localImage, *hostState, error) {
	imgs := make([]*localImage, len(refs))
	var wg sync.WaitGroup
	errs := make([]error, len(refs))
	for i, r := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = s.image(ctx, r)
		}()
	}
	local := make(chan struct{})
	go func() {
		defer close(local)
		if wg.Wait(); errors.Join(errs...) == nil {
			s.prestart(imgs)
		}
	}()
	st, ok := s.takePrefetch(ctx, h, docker)
	var invErr error
	if !ok {
		st, invErr = hostInventory(ctx, h, docker)
	}
	<-local
	if err := errors.Join(errs...); err != nil {
		return nil, st, err
	}
	return imgs, st, invErr
}

// sizes is the compressed size of each layer sent, by diffID.
func (tr *tracker) sizes(p *plan) map[string]int64 {
	sizes := map[string]int64{}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, b := range tr.blobs {
		if b != nil {
			n, _, _, _ := b.state()
			sizes[p.send[i]] = n
		}
	}
	return sizes
}

// addImages fills the per-image part of res.
func (res *Result) addImages(imgs []*localImage, p *plan, sizes map[string]int64) {
	for _, img := range imgs {
		ir := p.perImage[img]
		for _, d := range img.DiffIDs {
			ir.Bytes += sizes[d]
			delete(sizes, d) // counted for the first image only
		}
		res.Images = append(res.Images, *ir)
		if ir.Loaded {
			res.Sent = append(res.Sent, img.Ref)
		} else {
			res.Skipped = append(res.Skipped, img.Ref)
		}
	}
}

// upload streams every layer of p.send into the staging directory, a few at a
// time, each renamed into place once its size is checked.
func (s *Sender) upload(ctx context.Context, h Host, p *plan, tr *tracker, unpack bool) error {
	if len(p.send) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.opts.Uploads)
	errs := make([]error, len(p.send))
	var wg sync.WaitGroup
	// Layers go in the order they become available: with a legacy save
	// stream a layer is only known once the stream has passed it.
	for i, d := range p.send {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.blobFor(ctx, d)
			if err == nil {
				tr.mu.Lock()
				tr.blobs[i] = b
				tr.mu.Unlock()
				select {
				case sem <- struct{}{}:
					if unpack {
						err = uploadUnpacked(ctx, h, b, d, tr)
					} else {
						err = uploadLayer(ctx, h, b, d, tr)
					}
					<-sem
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
			if errs[i] = err; err != nil {
				cancel() // the load cannot happen anyway: stop the others
			} else {
				tr.done.Add(1)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func uploadLayer(ctx context.Context, h Host, b *blob, diffID string, tr *tracker) error {
	host := h.Conn.Name()
	final := path.Join(h.StagingDir, strings.TrimPrefix(diffID, "sha256:")+".gz")
	part := final + ".part-" + randHex()
	r := b.reader(ctx)
	defer r.Close()
	cmd := "umask 077 && mkdir -p " + shell.Quote(h.StagingDir) + " && cat > " + shell.Quote(part)
	var stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, &countingReader{r: r, t: tr}, io.Discard, &stderr)
	if err != nil {
		if berr := blobErr(b); berr != nil {
			return berr
		}
		return &CutError{Host: host, Layer: text.Short(diffID), Err: err}
	}
	if code != 0 {
		return hostFailure(h, cmd, code, stderr.String())
	}
	n, _, err := b.wait(ctx)
	if err != nil {
		return err
	}
	// Only a part of the expected size becomes a staged layer: a stream cut
	// short looks like a clean end of input to cat.
	fin := "f=" + shell.Quote(part) + "; n=$(wc -c <\"$f\" | tr -d ' ') && [ \"$n\" = " + strconv.FormatInt(n, 10) + " ] && mv -f \"$f\" " + shell.Quote(final) +
		" || { rm -f \"$f\"; echo \"received $n of " + strconv.FormatInt(n, 10) + " bytes\" >&2; exit 3; }"
	stderr.Reset()
	code, err = h.Conn.Run(ctx, fin, nil, io.Discard, &stderr)
	if err != nil {
		return fmt.Errorf("%s: staging layer %s: %w", host, text.Short(diffID), err)
	}
	if code != 0 {
		return hostFailure(h, "stage layer "+text.Short(diffID), code, stderr.String())
	}
	return nil
}

// uploadUnpacked streams a layer into gzip on the host, in one command:
// gzip checks the stream's length and CRC, the byte count checks the tar,
// and only then is the file renamed into place. A cut stream fails gzip and
// leaves the partial file for the next run to remove.
func uploadUnpacked(ctx context.Context, h Host, b *blob, diffID string, tr *tracker) error {
	host := h.Conn.Name()
	final := path.Join(h.StagingDir, strings.TrimPrefix(diffID, "sha256:")+".tar")
	part := final + ".part-" + randHex()
	r := &errReader{r: b.reader(ctx)}
	raw := b.size()
	cmd := "umask 077 && mkdir -p " + shell.Quote(h.StagingDir) + " && f=" + shell.Quote(part) + " && gzip -dc > \"$f\" || exit $?; "
	if raw > 0 {
		n := strconv.FormatInt(raw, 10)
		cmd += "n=$(wc -c <\"$f\" | tr -d ' '); [ \"$n\" = " + n + " ] || { rm -f \"$f\"; echo \"received $n of " + n + " bytes\" >&2; exit 3; }; "
	}
	cmd += "mv -f \"$f\" " + shell.Quote(final)
	var stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, &countingReader{r: r, t: tr}, io.Discard, &stderr)
	if berr := blobErr(b); berr != nil && (err != nil || code != 0) {
		return berr
	}
	if err == nil && code != 0 && r.err != nil {
		err = r.err // the stream broke here, and gzip saw it end early
	}
	if err != nil {
		return &CutError{Host: host, Layer: text.Short(diffID), Err: err}
	}
	if code != 0 {
		return hostFailure(h, "gzip -dc > "+part, code, stderr.String())
	}
	return nil
}

// errReader remembers the error a read returned other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func blobErr(b *blob) error {
	if _, done, err, _ := b.state(); done && err != nil {
		return err
	}
	return nil
}

// manifestItem is one image of a docker load archive (legacy layout).
type manifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// loadArchive is what the host's docker load reads: the metadata sent now
// and the staged layers, named as the archive's layout wants them.
type loadArchive struct {
	meta    bytes.Buffer
	files   []string            // the archive's top-level entries, in the staging directory
	prep    string              // host commands run before the archive is made ("" or "... && ")
	want    map[string]string   // ref -> config digest
	records map[string][]string // ref -> its layers' blobs, for idsFile (containerd store)
}

// load writes the archive's metadata into the staging directory, runs
// docker load on it and the staged layers, checks what the engine made of
// each image and, on a containerd store, records it.
func (s *Sender) load(ctx context.Context, h Host, docker string, p *plan, st *hostState) error {
	host := h.Conn.Name()
	build := s.legacyArchive
	if st.containerd {
		build = s.ociArchive
	}
	a, err := build(ctx, p, st)
	if err != nil {
		return err
	}
	dir := shell.Quote(h.StagingDir)
	cmd := "umask 077 && mkdir -p " + dir + " && cd " + dir + " && tar -xf - && " + a.prep + "tar -cf - " + shell.Join(a.files...) + " | " + docker + " load -q"
	var stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, &a.meta, io.Discard, &stderr)
	if err != nil {
		return fmt.Errorf("%s: docker load: %w", host, err)
	}
	if code != 0 {
		return hostFailure(h, docker+" load", code, stderr.String())
	}
	// Check what the engine now calls each ref, then drop the staged files.
	refs := make([]string, 0, len(a.want))
	for r := range a.want {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	check := "for r in " + shell.Join(refs...) + "; do " + docker + " image inspect --format " +
		shell.Quote("{{.Id}} {{json .RootFS.Layers}}") + " \"$r\" || exit 3; done; rm -rf " + shell.Quote(h.StagingDir)
	var stdout bytes.Buffer
	stderr.Reset()
	code, err = h.Conn.Run(ctx, check, nil, &stdout, &stderr)
	if err != nil {
		return fmt.Errorf("%s: checking loaded images: %w", host, err)
	}
	if code != 0 {
		return hostFailure(h, docker+" image inspect", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(refs) {
		return fmt.Errorf("%s: after docker load: unexpected inspect output %q", host, stdout.String())
	}
	var loaded []string
	byRef := map[string]*localImage{}
	for _, img := range p.load {
		byRef[img.Ref] = img
	}
	for i, r := range refs {
		id, layers, _ := strings.Cut(lines[i], " ")
		var got []string
		_ = json.Unmarshal([]byte(layers), &got)
		ok := id == a.want[r]
		if st.containerd { // the ID is that of the manifest the store keeps
			ok = strings.Join(got, ",") == strings.Join(byRef[r].DiffIDs, ",")
		}
		if !ok {
			return fmt.Errorf("%s: after docker load, %s is %s, want %s", host, r, id, a.want[r])
		}
		if id != byRef[r].ID { // a containerd store here or there
			loaded = append(loaded, byRef[r].ID+" "+id)
		}
		for _, l := range a.records[r] {
			loaded = append(loaded, l+" "+id)
		}
	}
	return recordLoaded(ctx, h, loaded)
}

// legacyArchive is a docker save archive of the legacy layout: configs and
// a manifest.json naming every layer, of which it holds only the staged
// ones; Engine 20.10's loader opens a layer's file only when the engine
// lacks its chain.
func (s *Sender) legacyArchive(ctx context.Context, p *plan, st *hostState) (*loadArchive, error) {
	a := &loadArchive{want: map[string]string{}}
	tw := tar.NewWriter(&a.meta)
	var manifest []manifestItem
	a.files = []string{"manifest.json"}
	for _, img := range p.load {
		cfg, dg, err := s.configOf(ctx, img)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(dg, "sha256:") + ".json"
		if err := addFile(tw, name, cfg); err != nil {
			return nil, err
		}
		a.files = append(a.files, name)
		item := manifestItem{Config: name, RepoTags: []string{img.Ref}}
		for _, d := range img.DiffIDs {
			name, ok := st.staged[d]
			if !ok {
				name = layerFile(d, st.unpacks())
			}
			item.Layers = append(item.Layers, name)
		}
		manifest = append(manifest, item)
		a.want[img.Ref] = dg
	}
	mj, _ := json.Marshal(manifest)
	if err := addFile(tw, "manifest.json", mj); err != nil {
		return nil, err
	}
	for _, d := range p.send {
		a.files = append(a.files, layerFile(d, st.unpacks()))
	}
	for _, d := range p.reuse {
		a.files = append(a.files, st.staged[d])
	}
	sort.Strings(a.files[1:])
	return a, tw.Close()
}

// OCI media types and a descriptor, for ociArchive.
const (
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type ociDesc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ociArchive is an OCI layout for a containerd image store, whose loader
// wants every layer of a legacy archive but takes an OCI one with blobs
// missing: a layer whose chain the host has and whose blob the store keeps
// (a blob of an image shipit loaded there, still present: hostState.recorded)
// is named, not sent. The image then references only blobs the store holds.
// Checked on Engine 28.5.2 (TestLocalBuildToCurrentEngineWithContainerdStore).
func (s *Sender) ociArchive(ctx context.Context, p *plan, st *hostState) (*loadArchive, error) {
	a := &loadArchive{want: map[string]string{}, records: map[string][]string{}}
	tw := tar.NewWriter(&a.meta)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	addBlob := func(b []byte) (ociDesc, error) {
		dg := digestOf(b)
		return ociDesc{Digest: dg, Size: int64(len(b))}, addFile(tw, "blobs/sha256/"+strings.TrimPrefix(dg, "sha256:"), b)
	}
	sent := map[string]bool{}
	for _, d := range p.send {
		sent[d] = true
	}
	var links []string
	linked := map[string]bool{}
	index := struct {
		SchemaVersion int       `json:"schemaVersion"`
		MediaType     string    `json:"mediaType"`
		Manifests     []ociDesc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: ociIndex}
	for _, img := range p.load {
		cfg, dg, err := s.configOf(ctx, img)
		if err != nil {
			return nil, err
		}
		cd, err := addBlob(cfg)
		if err != nil {
			return nil, err
		}
		cd.MediaType = ociConfig
		m := struct {
			SchemaVersion int       `json:"schemaVersion"`
			MediaType     string    `json:"mediaType"`
			Config        ociDesc   `json:"config"`
			Layers        []ociDesc `json:"layers"`
		}{SchemaVersion: 2, MediaType: ociManifest, Config: cd}
		for _, d := range img.DiffIDs {
			ld := ociDesc{MediaType: ociLayerGz}
			if sent[d] {
				b, err := s.blobFor(ctx, d)
				if err != nil {
					return nil, err
				}
				if ld.Size, ld.Digest, err = b.wait(ctx); err != nil {
					return nil, err
				}
				if !linked[ld.Digest] {
					linked[ld.Digest] = true
					links = append(links, "ln -f "+shell.Join(layerFile(d, false), "blobs/sha256/"+strings.TrimPrefix(ld.Digest, "sha256:")))
				}
			} else if r, ok := st.recorded(d); ok {
				ld.Digest, ld.Size = r.Digest, r.Size
			} else {
				return nil, fmt.Errorf("imagexfer: layer %s of %s is neither sent nor kept by the host's store", text.Short(d), img.Ref)
			}
			m.Layers = append(m.Layers, ld)
			a.records[img.Ref] = append(a.records[img.Ref], "layer "+d+" "+ld.Digest+" "+strconv.FormatInt(ld.Size, 10))
		}
		mj, _ := json.Marshal(m)
		md, err := addBlob(mj)
		if err != nil {
			return nil, err
		}
		md.MediaType = ociManifest
		md.Annotations = map[string]string{"io.containerd.image.name": fullName(img.Ref), "org.opencontainers.image.ref.name": img.Ref[strings.LastIndex(img.Ref, ":")+1:]}
		index.Manifests = append(index.Manifests, md)
		a.want[img.Ref] = dg
	}
	ij, _ := json.Marshal(index)
	if err := addFile(tw, "index.json", ij); err != nil {
		return nil, err
	}
	if err := addFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return nil, err
	}
	a.files = []string{"oci-layout", "index.json", "blobs"}
	if len(links) > 0 {
		a.prep = strings.Join(links, " && ") + " && "
	}
	return a, tw.Close()
}

// fullName is ref as a containerd store names it: docker.io/library/x:t for
// x:t, docker.io/a/x:t for a/x:t, a registry's name as it is.
func fullName(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	switch {
	case !ok:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	}
	return "docker.io/" + ref
}

// idsFile is where a host keeps, for images shipit loaded that the host's
// engine names otherwise than this machine's (a containerd store on either
// side names an image by a manifest), a line "<local ID> <host's ID>"; and
// for images loaded into a containerd store, a line
// "layer <diffID> <blob digest> <size> <ID the store gave the image>" per
// layer (the newest 500 lines): next time the image counts as present, and
// a layer whose blob an image still there references is not sent again.
func idsFile(h Host) string { return path.Join(path.Dir(h.StagingDir), ".image-ids") }

func recordLoaded(ctx context.Context, h Host, pairs []string) error {
	if len(pairs) == 0 {
		return nil
	}
	f := shell.Quote(idsFile(h))
	cmd := "umask 077 && { cat " + f + " 2>/dev/null; printf '%s\\n' " + shell.Join(pairs...) + "; } | tail -n 500 > " + f + ".tmp && mv -f " + f + ".tmp " + f
	var stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, nil, io.Discard, &stderr)
	if err != nil {
		return fmt.Errorf("%s: recording loaded images: %w", h.Conn.Name(), err)
	}
	if code != 0 {
		return hostFailure(h, "record loaded images in "+idsFile(h), code, stderr.String())
	}
	return nil
}

// layerFile is the staged file name of a layer sent now.
func layerFile(diffID string, unpacked bool) string {
	if unpacked {
		return strings.TrimPrefix(diffID, "sha256:") + ".tar"
	}
	return strings.TrimPrefix(diffID, "sha256:") + ".gz"
}

func addFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// tagPresent gives images the host already has their new names, and drops a
// staging directory left by an earlier, cut transfer.
func tagPresent(ctx context.Context, h Host, docker string, p *plan) error {
	var cmds []string
	for _, img := range p.present {
		cmds = append(cmds, docker+" tag "+shell.Join(p.hostIDs[img], img.Ref))
	}
	cmds = append(cmds, "rm -rf "+shell.Quote(h.StagingDir))
	cmd := strings.Join(cmds, " && ")
	var stderr bytes.Buffer
	code, err := h.Conn.Run(ctx, cmd, nil, io.Discard, &stderr)
	if err != nil {
		return fmt.Errorf("%s: docker tag: %w", h.Conn.Name(), err)
	}
	if code != 0 {
		return hostFailure(h, cmd, code, stderr.String())
	}
	return nil
}
