package probe

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// CacheDir is where a host keeps the probes shipit sent it, under the
// app's directory: one file per probe version and architecture, never
// rewritten, so a release that links one keeps working after an upgrade.
const CacheDir = ".shipit/probe"

// UnsupportedArchError is a host shipit has no probe for.
type UnsupportedArchError struct{ Host, Uname string }

func (e *UnsupportedArchError) Error() string {
	return fmt.Sprintf("host %s: no health probe for its architecture %q (shipit has linux/amd64 and linux/arm64)", e.Host, e.Uname)
}

// Hint says what to do.
func (e *UnsupportedArchError) Hint() string {
	return "set [deploy.health_check] cmd to a probe command the image brings (exec form: cmd = [\"/app\", \"-healthcheck\"]), " +
		"which then runs without shipit's probe"
}

// Install puts the probe into runDir (a release's .shipit-run, which the web
// service mounts at Mount): a hard link to the host's cached copy, sent
// first when the host lacks it. One round trip when the host has it.
func Install(ctx context.Context, c remote.Conn, appPath, runDir string) error {
	arches := []string{}
	for _, a := range Arches {
		id, err := ID(a)
		if err != nil {
			return err
		}
		arches = append(arches, a+"="+id)
	}
	cache := path.Join(appPath, CacheDir)
	dst := path.Join(runDir, File)
	// Prints the file it linked, or "need ARCH" / "unsupported UNAME".
	script := `m=$(uname -m); case "$m" in x86_64|amd64) a=amd64;; aarch64|arm64|armv8b|armv8l) a=arm64;; *) echo "unsupported $m"; exit 0;; esac
for p in ` + shell.Join(arches...) + `; do [ "${p%%=*}" = "$a" ] && id=${p#*=}; done
f=` + shell.Quote(cache) + `/shipit-probe-$id-linux-$a
if [ -x "$f" ]; then mkdir -p -m 755 ` + shell.Quote(runDir) + ` && { ln -f "$f" ` + shell.Quote(dst) + ` 2>/dev/null || cp -f "$f" ` + shell.Quote(dst) + `; } && echo linked; else echo "need $a"; fi`
	// At most twice: a host that lacks the probe gets it, then links it.
	var out string
	for sent := false; ; sent = true {
		o, err := remote.Output(ctx, c, script)
		if err != nil {
			return fmt.Errorf("installing the health probe: %w", err)
		}
		out = strings.TrimSpace(o)
		f := strings.Fields(out)
		switch {
		case len(f) == 1 && f[0] == "linked":
			return nil
		case len(f) == 2 && f[0] == "unsupported":
			return &UnsupportedArchError{Host: c.Name(), Uname: f[1]}
		case len(f) == 2 && f[0] == "need" && !sent:
			if err := send(ctx, c, cache, f[1]); err != nil {
				return fmt.Errorf("installing the health probe: %w", err)
			}
			continue
		}
		break
	}
	return fmt.Errorf("installing the health probe on %s: unexpected answer %q", c.Name(), out)
}

// send puts the probe for arch into the host's cache, 0755 from the start.
func send(ctx context.Context, c remote.Conn, cache, arch string) error {
	data, id, err := Binary(arch)
	if err != nil {
		return err
	}
	if _, err := remote.Output(ctx, c, "mkdir -p -m 700 "+shell.Quote(cache)); err != nil {
		return err
	}
	return c.WriteFile(ctx, path.Join(cache, "shipit-probe-"+id+"-linux-"+arch), bytes.NewReader(data), int64(len(data)), 0o755)
}
