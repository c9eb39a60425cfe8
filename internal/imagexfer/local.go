package imagexfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shipit-dev/shipit/internal/text"
)

// localDocker is the local docker CLI; tests replace it with a shim.
var localDocker = "docker"

// secretEnv are variables that never reach local docker, compose or git
// commands: a build could print or bake them into an image.
// (SHIPIT_AGE_KEY is internal/secrets.EnvKey; a test checks they agree.)
var secretEnv = []string{"SHIPIT_AGE_KEY"}

// localEnv is this process's environment without secrets, plus extra.
func localEnv(extra ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, s := range secretEnv {
			if strings.HasPrefix(kv, s+"=") {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

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

// inspectLocal returns the ID and layers of a local image.
func inspectLocal(ctx context.Context, ref string) (*localImage, error) {
	out, err := local(ctx, "", nil, localDocker, "image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", "--", ref)
	if err != nil {
		return nil, err
	}
	id, layers, _ := strings.Cut(strings.TrimSpace(out), " ")
	img := &localImage{Ref: ref, ID: id}
	if err := json.Unmarshal([]byte(layers), &img.DiffIDs); err != nil || !strings.HasPrefix(id, "sha256:") {
		return nil, fmt.Errorf("local: docker image inspect %s: unexpected output %q", ref, out)
	}
	for _, d := range img.DiffIDs {
		if !strings.HasPrefix(d, "sha256:") || !reHex64.MatchString(strings.TrimPrefix(d, "sha256:")) {
			return nil, fmt.Errorf("local: docker image inspect %s: unexpected layer %q", ref, d)
		}
	}
	img.chain = chainIDs(img.DiffIDs)
	return img, nil
}

// saveProc is a local `docker save`, started; its output is read once.
type saveProc struct {
	refs   []string
	args   []string
	cmd    *exec.Cmd
	out    io.Reader
	stderr bytes.Buffer
	cancel context.CancelFunc
}

// startSave starts local `docker save refs...` without reading it yet.
func startSave(ctx context.Context, refs []string) (*saveProc, error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &saveProc{refs: refs, args: append([]string{"save", "--"}, refs...), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, localDocker, p.args...)
	p.cmd.Env = localEnv()
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("local: %s save: %w", localDocker, err)
	}
	p.out = out
	return p, nil
}

// stop kills a save that nobody will read.
func (p *saveProc) stop() {
	p.cancel()
	_ = p.cmd.Wait()
}

// read hands the save's output to read and waits for the save to end.
// When read returns errStopEarly the save is killed and that is no error.
func (p *saveProc) read(read func(io.Reader) (*saveContents, error)) (*saveContents, error) {
	defer p.cancel()
	res, rerr := read(p.out)
	if rerr != nil {
		p.cancel() // stop the save: nobody reads its output any more
	} else {
		_, _ = io.Copy(io.Discard, p.out)
	}
	werr := p.cmd.Wait()
	if errors.Is(rerr, errStopEarly) {
		return res, nil
	}
	var ee *exec.ExitError
	if werr != nil && errors.As(werr, &ee) && !killed(ee) {
		// It failed by itself: the root cause of whatever read saw.
		return nil, &CommandError{Host: "local", Cmd: localDocker + " " + strings.Join(p.args, " "), Code: ee.ExitCode(), Stderr: tail(p.stderr.String())}
	}
	if rerr != nil {
		return nil, fmt.Errorf("local: %s save: %w", localDocker, rerr)
	}
	if werr != nil {
		return nil, fmt.Errorf("local: %s save: %w: %s", localDocker, werr, tail(p.stderr.String()))
	}
	return res, nil
}

func killed(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// local runs a local command without a shell and without secrets in its
// environment; non-zero exit is a *CommandError.
func local(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = localEnv(env...)
	cmd.WaitDelay = 5 * time.Second
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

// tail is the last lines of a local command's stderr, capped at ~2 KB
// because a failing docker build can print a line per layer.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2048 {
		s = s[len(s)-2048:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return text.Tail(s, 15)
}

// built holds the IDs of images this process built and that did not exist
// here before: no host can have them yet.
var built sync.Map // image ID -> struct{}

func builtNow(id string) bool {
	_, ok := built.Load(id)
	return ok
}
