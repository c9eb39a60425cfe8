// Package lifecycle runs a release's lifecycle on a host: drain it out of
// Traefik's rotation, stop it, point `current` at a release, write
// shipit.lock. One implementation, in POSIX sh (lifecycle.sh): the live
// deploy, rollback and cleanup run it through this package, and the host's
// lock holder (internal/hostlock) runs the same functions when it settles
// a run, or stops a stray release, while shipit is gone. Shell, because the
// host must be able to finish a switch alone; one copy, so the settle path
// drains and stops exactly as a live deploy does, with the same timeouts.
package lifecycle

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/probe"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Functions are the lifecycle's shell functions (drain, stop_release,
// switch_current, write_lock, stamp and what they use), after the drain
// marker's path. host.sh is appended to them, and overrides log.
var Functions = "DRAIN_MARKER=" + shell.Quote(probe.DrainMarker) + "\n" + functions

//go:embed lifecycle.sh
var functions string

//go:embed main.sh
var mainScript string

// TraefikAPI is where `shipit setup` binds Traefik's API inside its
// container (internal/traefik.APIAddr; kept equal by a test).
const TraefikAPI = "127.0.0.1:8080"

// Foreign says how to drain a release without a drain marker (one the
// original shipit started).
type Foreign string

const (
	ForeignNone   Foreign = ""       // stop it without a drain (the holder's way)
	ForeignWait   Foreign = "wait"   // its probe was made to fail: wait until Traefik drops it
	ForeignYields Foreign = "yields" // out of rotation already: outranked by the new release's routers
)

// Settings are the app's timeouts and how compose runs on the host.
type Settings struct {
	Compose      string        // "docker compose" or "docker-compose"
	DrainTimeout time.Duration // [deploy] drain_timeout
	StopTimeout  time.Duration // [deploy] stop_timeout
	// GraceDrained, when shorter than StopTimeout, is the grace period
	// once the drain succeeded (an app that ignores its stop signal).
	GraceDrained time.Duration
	Foreign      Foreign
	RouteTimeout time.Duration // how long WaitRouted waits
}

// Runner runs lifecycle commands for the app at AppPath.
type Runner struct {
	Conn    remote.Conn
	AppPath string
	// Guard, when set, is the held lock's shell test (hostlock.Guard):
	// the command then runs under the holder's mutex and checks the guard
	// again there, so it never interleaves with the holder settling the
	// run, nor runs after it did.
	Guard string
	Logf  func(string)
}

// seconds is d in whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

func (s Settings) header() string {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, shell.Quote(v)) }
	set("J_COMPOSE", s.Compose)
	if s.DrainTimeout > 0 {
		set("J_DRAIN_TIMEOUT", seconds(s.DrainTimeout))
	}
	if s.StopTimeout > 0 {
		set("J_STOP_TIMEOUT", seconds(s.StopTimeout))
	}
	if s.GraceDrained > 0 && (s.StopTimeout <= 0 || s.GraceDrained < s.StopTimeout) {
		set("J_GRACE_DRAINED", seconds(s.GraceDrained))
	}
	if s.RouteTimeout > 0 {
		set("J_ROUTE_TIMEOUT", seconds(s.RouteTimeout))
	}
	set("J_FOREIGN", string(s.Foreign))
	set("J_TRAEFIK_API", TraefikAPI)
	return b.String()
}

// Command is the remote command running the lifecycle's COMMAND ARGS for
// the app at appPath, with s (exported for the tests of the scripts).
func Command(s Settings, guard, appPath string, args ...string) string {
	script := s.header() + Functions + mainScript
	cmd := "sh -c " + shell.Quote(script) + " shipit-lifecycle " + shell.Join(append([]string{args[0], appPath}, args[1:]...)...)
	if guard == "" {
		return cmd
	}
	dir := path.Join(appPath, ".shipit")
	return "mkdir -p " + shell.Quote(dir) + " && flock -x " + shell.Quote(path.Join(dir, "mutex")) + " sh -c " + shell.Quote(guard+cmd)
}

// run runs a lifecycle command; what it logs goes to Logf, its other
// output lines are returned. The error names the command as the user
// knows it (what), not the script.
func (r Runner) run(ctx context.Context, s Settings, what string, args ...string) ([]string, error) {
	var out, errb bytes.Buffer
	code, err := r.Conn.Run(ctx, Command(s, r.Guard, r.AppPath, args...), nil, &out, &errb)
	if err != nil {
		return nil, fmt.Errorf("host %s: %s: %w", r.Conn.Name(), what, err)
	}
	var said []string
	for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if msg, ok := strings.CutPrefix(l, "log "); ok {
			r.logf(msg)
		} else if l != "" {
			said = append(said, l)
		}
	}
	if code != 0 {
		return said, remote.Failed(r.Conn.Name(), what, code, errb.String(), "")
	}
	return said, nil
}

func (r Runner) logf(s string) {
	if r.Logf != nil {
		r.Logf(s)
	}
}

// Drain takes the release in dir (compose project) out of Traefik's
// rotation and waits, at most s.DrainTimeout, until Traefik no longer
// routes to it. It reports what happened, and whether it is out of
// rotation (false: timed out, or no drain could be made; not an error).
func (r Runner) Drain(ctx context.Context, s Settings, dir, project string) (string, bool, error) {
	said, err := r.run(ctx, s, "drain "+project, "drain", dir, project)
	if err != nil {
		return "", false, err
	}
	for _, l := range said {
		if msg, ok := strings.CutPrefix(l, "drain: "); ok {
			return msg, strings.HasPrefix(msg, "drained "), nil
		}
	}
	return "", true, nil // nothing routed: nothing to drain
}

// Routing is what WaitRouted found.
type Routing string

const (
	Routed   Routing = "ok"      // Traefik sends requests to every routed container
	NoRoutes Routing = "none"    // the project has no routed container
	NoAPI    Routing = "noapi"   // no Traefik API where `shipit setup` binds it
	TimedOut Routing = "timeout" // not routed within the timeout (why says what is missing)
)

// WaitRouted waits, polling Traefik's API on the host (no round trip per
// poll), until Traefik sends requests to every routed container of the
// compose project, at most s.RouteTimeout.
func (r Runner) WaitRouted(ctx context.Context, s Settings, project string) (Routing, string, error) {
	said, err := r.run(ctx, s, "wait until Traefik routes to "+project, "wait_routed", project)
	if err != nil {
		return "", "", err
	}
	for _, l := range said {
		if v, ok := strings.CutPrefix(l, "routed: "); ok {
			res, why, _ := strings.Cut(v, " ")
			return Routing(res), why, nil
		}
	}
	return "", "", fmt.Errorf("host %s: waiting for Traefik to route %s: no answer (%q)", r.Conn.Name(), project, said)
}

// Stop drains the release in dir (compose project), stops it with its
// grace period and removes its containers (`down --remove-orphans` plus
// downArgs). An error means containers of it still run.
func (r Runner) Stop(ctx context.Context, s Settings, dir, project string, downArgs ...string) error {
	_, err := r.run(ctx, s, "stop release "+project, append([]string{"stop", dir, project}, downArgs...)...)
	return err
}

// nameRe and hexRe are what shipit.lock's values may be: write_lock puts
// them into JSON unescaped.
var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]*$`)
	hexRe  = regexp.MustCompile(`^[0-9a-f]*$`)
)

// Switch points `current` at releases/release (an atomic rename).
func (r Runner) Switch(ctx context.Context, release string) error {
	if release == "" || !nameRe.MatchString(release) {
		return fmt.Errorf("switch current: invalid release name %q", release)
	}
	_, err := r.run(ctx, Settings{}, "switch current to "+release, "switch", release)
	return err
}

// Lock is what WriteLock records in shipit.lock.
type Lock struct {
	Current, Previous, GitSHA, SecretsHash string
	// Stamp also records the time Current was deployed, in its directory.
	Stamp bool
}

// WriteLock writes shipit.lock atomically.
func (r Runner) WriteLock(ctx context.Context, l Lock) error {
	if l.Current == "" || !nameRe.MatchString(l.Current) || !nameRe.MatchString(l.Previous) {
		return fmt.Errorf("write shipit.lock: invalid release names %q, %q", l.Current, l.Previous)
	}
	if !hexRe.MatchString(l.GitSHA) || !hexRe.MatchString(l.SecretsHash) {
		return fmt.Errorf("write shipit.lock: git sha %q and secrets hash %q must be lowercase hex", l.GitSHA, l.SecretsHash)
	}
	args := []string{"lock", l.Current, l.Previous, l.GitSHA, l.SecretsHash}
	if l.Stamp {
		args = append(args, "stamp")
	}
	_, err := r.run(ctx, Settings{}, "write shipit.lock", args...)
	return err
}
