package lifecycle

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/lockfile"
	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// The lifecycle's shell runs here under the local sh (dash on Debian, like
// a host's /bin/sh) against a fake docker whose answers are files in
// state/; the end-to-end tests run it on real sshd, Docker and Traefik.

// fakeDocker answers: ps (the id while state/running exists), inspect of
// labels and networks, of the container's status, of traefik's args, exec
// of Traefik's API (state/api present; services from state/servers), and
// compose stop/down (stop removes state/running). Every call is logged.
const fakeDocker = `#!/bin/sh
S=$(dirname "$0")/../state
echo "$*" >>"$S/log"
case "$1" in
ps) [ -e "$S/running" ] && echo c0ffee ; exit 0 ;;
inspect)
	case "$*" in
	*Config.Labels*) printf 'label traefik.enable=true\nlabel traefik.http.services.app-prod.loadbalancer.server.port=8080\nnet traefik 10.0.0.7\n' ;;
	*State.Status*) cat "$S/status" ;;
	*.Args*) echo "--providers.providersThrottleDuration=100ms" ;;
	esac
	exit 0 ;;
exec)
	[ -e "$S/api" ] || exit 1
	case "$*" in
	*/api/version) echo '{"Version":"3.1"}' ;;
	*/api/http/services/app-prod@docker) [ -e "$S/servers" ] || exit 1; cat "$S/servers" ;;
	*) exit 1 ;;
	esac ;;
compose)
	case "$*" in *" stop "*) rm -f "$S/running" ;; esac
	exit 0 ;;
esac
exit 0
`

type fixture struct {
	t     *testing.T
	dir   string // the fake host's root
	app   string // the app's directory
	state string
	conn  *localconn.Conn
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, app: filepath.Join(dir, "app"), state: filepath.Join(dir, "state")}
	for _, d := range []string{filepath.Join(dir, "bin"), f.state, filepath.Join(f.app, "releases", "r1", ".shipit-run"),
		filepath.Join(f.app, "releases", "r2")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.write("bin/docker", fakeDocker, 0o755)
	f.write("app/releases/r1/.shipit-compose", "app-r1\ndocker-compose.yml\ndocker-compose.override.yml\n", 0o644)
	f.write("state/running", "", 0o644)
	f.write("state/status", "running healthy\n", 0o644)
	f.conn = &localconn.Conn{HostName: "h1", Dir: dir, Env: []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH")}}
	return f
}

func (f *fixture) write(rel, body string, mode os.FileMode) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, rel), []byte(body), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) runner() (Runner, *[]string) {
	var logs []string
	return Runner{Conn: f.conn, AppPath: f.app, Logf: func(s string) { logs = append(logs, s) }}, &logs
}

func (f *fixture) dockerLog() string {
	b, _ := os.ReadFile(filepath.Join(f.state, "log"))
	return string(b)
}

var settings = Settings{Compose: "docker compose", DrainTimeout: 10 * time.Second, StopTimeout: 30 * time.Second}

const servedBy = `{"name":"app-prod@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.7:8080"}]}}`

// Traefik's API says when the release is out of rotation: the drain places
// the marker, then waits until its address is no server of its service.
func TestDrainWaitsUntilTraefikDropsTheServer(t *testing.T) {
	f := newFixture(t)
	f.write("state/api", "", 0o644)
	f.write("state/servers", servedBy, 0o644)
	go func() {
		time.Sleep(700 * time.Millisecond)
		f.write("state/servers", `{"name":"app-prod@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.9:8080"}]}}`, 0o644)
	}()
	r, _ := f.runner()
	msg, drained, err := r.Drain(context.Background(), settings, filepath.Join(f.app, "releases", "r1"), "app-r1")
	if err != nil || !drained || !strings.HasPrefix(msg, "drained app-r1 in ") {
		t.Fatalf("drain: %q %v %v", msg, drained, err)
	}
	if _, err := os.Stat(filepath.Join(f.app, "releases", "r1", ".shipit-run", "drain")); err != nil {
		t.Fatalf("no drain marker: %v", err)
	}
	if !strings.Contains(f.dockerLog(), "/api/http/services/app-prod@docker") {
		t.Fatalf("Traefik's API was not asked:\n%s", f.dockerLog())
	}
}

// A drain that never completes times out without failing: the caller stops
// the release anyway, with its full grace period.
func TestDrainTimesOut(t *testing.T) {
	f := newFixture(t)
	f.write("state/api", "", 0o644)
	f.write("state/servers", servedBy, 0o644)
	r, _ := f.runner()
	s := settings
	s.DrainTimeout = time.Second
	msg, drained, err := r.Drain(context.Background(), s, filepath.Join(f.app, "releases", "r1"), "app-r1")
	if err != nil || drained || !strings.Contains(msg, "timed out after 1s (c0ffee still a server of app-prod)") {
		t.Fatalf("drain: %q %v %v", msg, drained, err)
	}
}

// Without Traefik's API, Docker's view decides: unhealthy is out of
// rotation once Traefik's throttle passed.
func TestDrainWithoutTheAPIUsesDockerHealth(t *testing.T) {
	f := newFixture(t)
	f.write("state/status", "running unhealthy\n", 0o644)
	r, _ := f.runner()
	msg, drained, err := r.Drain(context.Background(), settings, filepath.Join(f.app, "releases", "r1"), "app-r1")
	if err != nil || !drained || !strings.HasPrefix(msg, "drained app-r1 in ") {
		t.Fatalf("drain: %q %v %v", msg, drained, err)
	}
}

// A release without a drain marker (the original shipit's) is drained only
// when the caller prepared it (traefik.PrepareForeign).
func TestDrainOfAForeignRelease(t *testing.T) {
	f := newFixture(t)
	f.write("state/status", "running unhealthy\n", 0o644)
	r, _ := f.runner()
	dir := filepath.Join(f.app, "releases", "r2")
	if _, drained, err := r.Drain(context.Background(), settings, dir, "r2"); err != nil || drained {
		t.Fatalf("unprepared: drained %v, %v", drained, err)
	}
	s := settings
	s.Foreign = ForeignYields
	if msg, drained, err := r.Drain(context.Background(), s, dir, "r2"); err != nil || !drained || !strings.HasPrefix(msg, "drained r2 in ") {
		t.Fatalf("yields: %q %v %v", msg, drained, err)
	}
}

// Stop uses the shorter grace period only after a drain that succeeded.
func TestStopGracePeriod(t *testing.T) {
	for _, c := range []struct {
		name    string
		servers string
		want    string
	}{
		{"drained", `{"name":"app-prod@docker","loadBalancer":{"servers":[]}}`, "stop -t 2"},
		{"drain timed out", servedBy, "stop -t 30"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.write("state/api", "", 0o644)
			f.write("state/servers", c.servers, 0o644)
			r, logs := f.runner()
			s := settings
			s.DrainTimeout, s.GraceDrained = time.Second, 2*time.Second
			if err := r.Stop(context.Background(), s, filepath.Join(f.app, "releases", "r1"), "app-r1", "--rmi", "local"); err != nil {
				t.Fatal(err)
			}
			calls := f.dockerLog()
			if !strings.Contains(calls, "compose -p app-r1 -f docker-compose.yml -f docker-compose.override.yml "+c.want+"\n") ||
				!strings.Contains(calls, "down --remove-orphans --rmi local") {
				t.Fatalf("docker calls:\n%s", calls)
			}
			if len(*logs) == 0 || !strings.HasPrefix((*logs)[0], "stopping app-r1 (drain at most 1s, then Traefik's throttle; stop -t 30, 2 once drained)") {
				t.Fatalf("logs: %q", *logs)
			}
		})
	}
}

// A release whose containers still run after stop and down is an error
// that says so.
func TestStopFailsWhenTheReleaseStillRuns(t *testing.T) {
	f := newFixture(t)
	f.write("state/status", "running unhealthy\n", 0o644)
	// compose stop leaves it running (a docker that cannot stop it).
	f.write("bin/docker", strings.Replace(fakeDocker, `rm -f "$S/running"`, `:`, 1), 0o755)
	r, _ := f.runner()
	err := r.Stop(context.Background(), settings, filepath.Join(f.app, "releases", "r1"), "app-r1")
	if err == nil || !strings.Contains(err.Error(), "release app-r1 still runs after stop and down") || !strings.Contains(err.Error(), "stop release app-r1") {
		t.Fatalf("err: %v", err)
	}
}

// shipit.lock as the lifecycle writes it is the spec's format, byte for
// byte as internal/lockfile marshals it.
func TestWriteLockAndSwitch(t *testing.T) {
	f := newFixture(t)
	r, _ := f.runner()
	ctx := context.Background()
	if err := r.Switch(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(f.app, "current")); err != nil || l != "releases/r2" {
		t.Fatalf("current -> %q, %v", l, err)
	}
	want := lockfile.Lock{CurrentRelease: "r2", PreviousRelease: "r1", GitSHA: "0a1b2c", SecretsHash: "ff00"}
	if err := r.WriteLock(ctx, Lock{Current: "r2", Previous: "r1", GitSHA: "0a1b2c", SecretsHash: "ff00", Stamp: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.app, "shipit.lock"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := lockfile.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, got.DeployedAt); err != nil {
		t.Fatalf("deployed_at %q: %v", got.DeployedAt, err)
	}
	want.DeployedAt = got.DeployedAt
	if string(b) != string(want.Marshal()) {
		t.Fatalf("shipit.lock:\n%s\nwant:\n%s", b, want.Marshal())
	}
	if st, err := os.Stat(filepath.Join(f.app, "shipit.lock")); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("shipit.lock mode: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(f.app, "releases", "r2", ".shipit-deployed-at")); err != nil {
		t.Fatalf("no deployed-at stamp: %v", err)
	}
	for _, bad := range []Lock{{Current: "r2;rm"}, {Current: "r2", GitSHA: "\"x"}, {Current: ""}} {
		if err := r.WriteLock(ctx, bad); err == nil {
			t.Errorf("WriteLock(%+v) accepted", bad)
		}
	}
	if err := r.Switch(ctx, "../x"); err == nil {
		t.Error("Switch(../x) accepted")
	}
}

// Under the deploy lock a lifecycle command waits for the holder's mutex
// (a settle in progress) and tests the guard again once it has it.
func TestGuardedCommandsWaitForTheHolderAndRecheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, _ := f.runner()
	r.Guard = "{ [ -e " + filepath.Join(f.state, "live") + " ] || { echo refused >&2; exit 97; }; }; "
	if err := os.MkdirAll(filepath.Join(f.app, ".shipit"), 0o700); err != nil {
		t.Fatal(err)
	}
	f.write("state/live", "", 0o644)
	// The holder settles: it holds the mutex, and the run is no longer
	// live once it lets go.
	hold := exec.Command("flock", "-x", filepath.Join(f.app, ".shipit", "mutex"), "sh", "-c",
		"sleep 1; rm -f "+filepath.Join(f.state, "live"))
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the holder has the mutex
	err := r.Switch(ctx, "r2")
	hold.Wait()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a switch queued behind the settle ran: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(f.app, "current")); !os.IsNotExist(err) {
		t.Fatalf("current was switched after the settle: %v", err)
	}
	f.write("state/live", "", 0o644)
	if err := r.Switch(ctx, "r2"); err != nil {
		t.Fatalf("live run: %v", err)
	}
}

// WaitRouted polls Traefik's API on the host until the release's address
// is a server of its service, and says what is missing when it never is.
func TestWaitRouted(t *testing.T) {
	f := newFixture(t)
	f.write("state/api", "", 0o644)
	go func() {
		time.Sleep(500 * time.Millisecond)
		f.write("state/servers", servedBy, 0o644)
	}()
	r, _ := f.runner()
	s := Settings{RouteTimeout: 10 * time.Second}
	if res, why, err := r.WaitRouted(context.Background(), s, "app-r1"); err != nil || res != Routed {
		t.Fatalf("routed: %q %q %v", res, why, err)
	}
	f.write("state/servers", `{"name":"app-prod@docker","loadBalancer":{"servers":[]}}`, 0o644)
	s.RouteTimeout = time.Second
	if res, why, err := r.WaitRouted(context.Background(), s, "app-r1"); err != nil || res != TimedOut || why != "service app-prod does not list 10.0.0.7:8080" {
		t.Fatalf("not routed: %q %q %v", res, why, err)
	}
	os.Remove(filepath.Join(f.state, "api"))
	if res, _, err := r.WaitRouted(context.Background(), s, "app-r1"); err != nil || res != NoAPI {
		t.Fatalf("without the API: %q %v", res, err)
	}
	os.Remove(filepath.Join(f.state, "running"))
	if res, _, err := r.WaitRouted(context.Background(), s, "app-r1"); err != nil || res != NoRoutes {
		t.Fatalf("nothing routed: %q %v", res, err)
	}
}
