// Package imagexfer moves locally built Docker images to a host without a
// registry and without an ssh binary: images the host already has (by image
// ID) are only re-tagged there; the rest go as one `docker save` stream,
// gzip-compressed here, into `docker load` over remote.Conn.
package imagexfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// localDocker is the local docker CLI; tests replace it with a shim.
var localDocker = "docker"

// Image is a locally built image to make available on a host.
type Image struct {
	Ref string // local tag, e.g. demo-web:20250219-120000
	ID  string // sha256:... from docker image inspect
}

// Result reports a transfer.
type Result struct {
	Sent    []string // refs streamed to the host
	Skipped []string // refs the host already had by ID (only re-tagged)
	Bytes   int64    // compressed bytes sent
}

// CommandError is a command that ran but exited non-zero, locally or on a host.
type CommandError = remote.CommandError

// ErrDockerMissing is wrapped by the error returned when the host has no docker.
var ErrDockerMissing = errors.New("docker is not installed")

// LocalImageID returns the ID (sha256:...) of a local image.
func LocalImageID(ctx context.Context, ref string) (string, error) {
	out, err := local(ctx, "", nil, localDocker, "image", "inspect", "--format", "{{.Id}}", "--", ref)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "sha256:") {
		return "", fmt.Errorf("local: docker image inspect %s: unexpected id %q", ref, id)
	}
	return id, nil
}

// TagForRelease tags the local image src as dst.
func TagForRelease(ctx context.Context, src, dst string) error {
	_, err := local(ctx, "", nil, localDocker, "tag", src, dst)
	return err
}

// Transfer makes every image available on c under its Ref. dockerCmd is the
// host's docker command prefix ("docker", "sudo docker", "docker -H unix:///x");
// it is split on spaces and each word is quoted.
func Transfer(ctx context.Context, c remote.Conn, images []Image, dockerCmd string, logf func(string, ...any)) (Result, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var res Result
	if len(images) == 0 {
		return res, nil
	}
	words := strings.Fields(dockerCmd)
	if len(words) == 0 {
		words = []string{"docker"}
	}
	docker := shell.Join(words...)
	host := c.Name()

	for _, im := range images {
		if im.Ref == "" || !strings.HasPrefix(im.ID, "sha256:") || strings.HasPrefix(im.Ref, "-") {
			return res, fmt.Errorf("imagexfer: invalid image %+v (need a ref and a sha256: ID)", im)
		}
	}

	// 1. Which IDs does the host have? One command for all.
	ids := make([]string, 0, len(images))
	seen := map[string]bool{}
	for _, im := range images {
		if !seen[im.ID] {
			seen[im.ID] = true
			ids = append(ids, im.ID)
		}
	}
	have, err := remoteIDs(ctx, c, docker, ids)
	if err != nil {
		return res, err
	}

	// 2. Re-tag what is there; collect what is not.
	var tags []string
	var send []string
	for _, im := range images {
		if have[im.ID] == im.ID {
			tags = append(tags, docker+" tag "+shell.Join(im.ID, im.Ref))
			res.Skipped = append(res.Skipped, im.Ref)
		} else {
			send = append(send, im.Ref)
		}
	}
	if len(tags) > 0 {
		cmd := strings.Join(tags, " && ")
		code, _, stderr, err := run(ctx, c, cmd, nil)
		if err != nil {
			return res, fmt.Errorf("%s: docker tag: %w", host, err)
		}
		if code != 0 {
			return res, &CommandError{Host: host, Cmd: cmd, Code: code, Stderr: tail(stderr)}
		}
		logf("%s: %d image(s) already present, tagged: %s", host, len(res.Skipped), strings.Join(res.Skipped, " "))
	}
	if len(send) == 0 {
		return res, nil
	}

	// 3. docker save | gzip | remote docker load.
	logf("%s: sending %d image(s): %s", host, len(send), strings.Join(send, " "))
	n, err := stream(ctx, c, docker, send)
	res.Bytes = n
	if err != nil {
		return res, err
	}

	// 4. Verify the refs now resolve to the expected IDs on the host.
	var refs []string
	want := map[string]string{}
	for _, im := range images {
		if have[im.ID] != im.ID {
			refs = append(refs, im.Ref)
			want[im.Ref] = im.ID
		}
	}
	got, err := remoteIDs(ctx, c, docker, refs)
	if err != nil {
		return res, err
	}
	for _, r := range refs {
		if got[r] != want[r] {
			return res, fmt.Errorf("%s: after docker load, %s is %q, want %s", host, r, got[r], want[r])
		}
	}
	res.Sent = send
	logf("%s: sent %d image(s), %d compressed bytes", host, len(send), n)
	return res, nil
}

// remoteIDs inspects each name on the host and maps it to its image ID
// ("" when the host lacks it).
func remoteIDs(ctx context.Context, c remote.Conn, docker string, names []string) (map[string]string, error) {
	cmd := "for i in " + shell.Join(names...) + "; do " +
		"if o=$(" + docker + " image inspect --format " + shell.Quote("{{.Id}}") + " \"$i\" 2>&1); then printf '%s\\n' \"$o\"; " +
		"else rc=$?; case $o in *'such image'*|*'image not known'*) echo missing;; " +
		"*) printf '%s\\n' \"$o\" >&2; [ $rc -eq 127 ] && exit 127; exit 3;; esac; fi; done"
	code, stdout, stderr, err := run(ctx, c, cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: docker image inspect: %w", c.Name(), err)
	}
	if code == 127 {
		return nil, fmt.Errorf("imagexfer: %w on %s (%s): %s", ErrDockerMissing, c.Name(), docker, tail(stderr))
	}
	if code != 0 {
		return nil, &CommandError{Host: c.Name(), Cmd: docker + " image inspect", Code: code, Stderr: tail(stderr)}
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("%s: docker image inspect: got %d lines for %d images: %q", c.Name(), len(lines), len(names), stdout)
	}
	m := make(map[string]string, len(names))
	for i, n := range names {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "sha256:") {
			m[n] = l
		} else {
			m[n] = ""
		}
	}
	return m, nil
}

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// stream runs local `docker save refs...`, gzips it and feeds it to the
// host's `docker load`. It returns the compressed bytes sent.
func stream(ctx context.Context, c remote.Conn, docker string, refs []string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	args := append([]string{"save", "--"}, refs...)
	save := exec.CommandContext(ctx, localDocker, args...)
	var saveErr bytes.Buffer
	save.Stderr = &saveErr
	out, err := save.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := save.Start(); err != nil {
		return 0, fmt.Errorf("local: %s save: %w", localDocker, err)
	}

	pr, pw := io.Pipe()
	cw := &countWriter{w: pw}
	saveDone := make(chan error, 1)
	go func() {
		gz, _ := gzip.NewWriterLevel(cw, gzip.BestSpeed)
		_, cerr := io.Copy(gz, out)
		if cerr == nil {
			cerr = gz.Close()
		}
		if cerr != nil && save.Process != nil {
			_ = save.Process.Kill() // nobody reads its stdout any more
		}
		werr := save.Wait()
		switch {
		case werr != nil:
			var ee *exec.ExitError
			if errors.As(werr, &ee) && ee.ExitCode() >= 0 {
				// It exited by itself (not killed by us): the root cause.
				werr = &CommandError{Host: "local", Cmd: localDocker + " " + strings.Join(args, " "), Code: ee.ExitCode(), Stderr: tail(saveErr.String())}
			} else if ctx.Err() != nil {
				werr = ctx.Err()
			} else {
				werr = fmt.Errorf("local: %s save: %w: %s", localDocker, werr, tail(saveErr.String()))
			}
			pw.CloseWithError(werr)
			saveDone <- werr
		case cerr != nil:
			pw.CloseWithError(cerr)
			saveDone <- cerr
		default:
			pw.Close()
			saveDone <- nil
		}
	}()

	load := docker + " load -q"
	code, _, stderr, err := run(ctx, c, load, pr)
	// If load ended early, stop the sender: unblock its writes, kill save.
	pr.CloseWithError(errLoadEnded)
	if err != nil || code != 0 {
		cancel()
	}
	serr := <-saveDone
	n := cw.n.Load()

	var ce *CommandError
	if errors.As(serr, &ce) { // local save failed: that is the root cause
		return n, serr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return n, err
		}
		return n, fmt.Errorf("%s: %s: %w", c.Name(), load, err)
	}
	if code != 0 {
		return n, &CommandError{Host: c.Name(), Cmd: load, Code: code, Stderr: tail(stderr)}
	}
	if serr != nil && !errors.Is(serr, errLoadEnded) {
		return n, serr
	}
	return n, nil
}

var errLoadEnded = errors.New("remote docker load ended")

func run(ctx context.Context, c remote.Conn, cmd string, stdin io.Reader) (int, string, string, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.Run(ctx, cmd, stdin, &stdout, &stderr)
	return code, stdout.String(), stderr.String(), err
}

// local runs a local command without a shell; non-zero exit is a *CommandError.
func local(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			return stdout.String(), ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), &CommandError{Host: "local", Cmd: name + " " + strings.Join(args, " "), Code: ee.ExitCode(), Stderr: tail(stderr.String())}
		}
		return stdout.String(), fmt.Errorf("local: %s: %w", name, err)
	}
	return stdout.String(), nil
}

// tail returns the last few lines of s (at most ~2 KB), trimmed.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2048 {
		s = s[len(s)-2048:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
