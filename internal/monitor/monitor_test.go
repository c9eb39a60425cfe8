package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

const (
	rel1 = "20260101-120000"
	rel0 = "20251231-090000"
)

// inspectJSON is trimmed `docker inspect` output: the current web (healthy),
// a worker without health check, an old exited web, an accessory, and a
// container that only matched the name filter by regexp accident.
func inspectJSON(app string, started time.Time) string {
	c := func(id, name, status, health, started string, labels map[string]string) map[string]any {
		st := map[string]any{"Status": status, "StartedAt": started}
		if health != "" {
			st["Health"] = map[string]any{"Status": health}
		}
		return map[string]any{"Id": id, "Name": "/" + name, "RestartCount": 0, "State": st, "Config": map[string]any{"Labels": labels}}
	}
	s := started.Format(time.RFC3339Nano)
	lab := func(rel, svc string) map[string]string {
		return map[string]string{"shipit.app": app, "shipit.release": rel, "com.docker.compose.service": svc}
	}
	rows := []any{
		c("aaaaaaaaaaaa1111", app+"-"+rel1+"-web-1", "running", "healthy", s, lab(rel1, "web")),
		c("bbbbbbbbbbbb2222", app+"-"+rel1+"-worker-1", "running", "", s, lab(rel1, "worker")),
		c("cccccccccccc3333", app+"-"+rel0+"-web-1", "exited", "unhealthy", s, lab(rel0, "web")),
		c("dddddddddddd4444", app+"-db", "running", "", s, map[string]string{}),
		c("eeeeeeeeeeee5555", "other-db", "running", "", s, map[string]string{}),
	}
	b, _ := json.Marshal(rows)
	return string(b)
}

const statsOut = `{"BlockIO":"0B / 0B","CPUPerc":"1.49%","Container":"x","ID":"aaaaaaaaaaaa","MemPerc":"0.05%","MemUsage":"12.5MiB / 23.54GiB","Name":"x","NetIO":"736B / 0B","PIDs":"1"}
{"BlockIO":"0B / 0B","CPUPerc":"0.00%","Container":"y","ID":"bbbbbbbbbbbb","MemPerc":"0.00%","MemUsage":"516KiB / 23.54GiB","Name":"y","NetIO":"0B / 0B","PIDs":"1"}
{"BlockIO":"0B / 0B","CPUPerc":"0.00%","Container":"z","ID":"cccccccccccc","MemPerc":"0.00%","MemUsage":"0B / 0B","Name":"z","NetIO":"0B / 0B","PIDs":"0"}
{"BlockIO":"0B / 0B","CPUPerc":"0.30%","Container":"w","ID":"dddddddddddd","MemPerc":"1.00%","MemUsage":"1.5GiB / 23.54GiB","Name":"w","NetIO":"0B / 0B","PIDs":"3"}
`

const sysdfOut = `{"Active":"1","Reclaimable":"1.986MB (100%)","Size":"1.986MB","TotalCount":"22","Type":"Images"}
{"Active":"1","Reclaimable":"0B","Size":"12kB","TotalCount":"1","Type":"Containers"}
{"Active":"0","Reclaimable":"0B","Size":"0B","TotalCount":"0","Type":"Local Volumes"}
{"Active":"0","Reclaimable":"5.361kB","Size":"5.361kB","TotalCount":"145","Type":"Build Cache"}
`

// fakeHost lays out a deploy dir and a fake docker on PATH, so the real
// script runs in a real sh and its output goes through the real parser.
// The docker stand-in logs its arguments to check that quoting held.
func fakeHost(t *testing.T, app string, started time.Time) (spec Spec, pathEnv, argLog string) {
	t.Helper()
	dir := t.TempDir()
	deployTo := filepath.Join(dir, "deploy root $(touch PWNED) 'x'")
	appDir := filepath.Join(deployTo, app)
	if err := os.MkdirAll(filepath.Join(appDir, "releases", rel1), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(appDir, "releases", rel1, "f"), make([]byte, 5000), 0o644)
	if err := os.Symlink("releases/"+rel1, filepath.Join(appDir, "current")); err != nil {
		t.Fatal(err)
	}
	lock := fmt.Sprintf(`{"current_release":%q,"previous_release":%q,"git_sha":"0123456789abcdef","secrets_hash":"","deployed_at":"2026-01-01T12:00:00Z"}`, rel1, rel0)
	os.WriteFile(filepath.Join(appDir, "shipit.lock"), []byte(lock), 0o644)
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	for name, body := range map[string]string{"inspect.json": inspectJSON(app, started), "stats.txt": statsOut, "sysdf.txt": sysdfOut} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	argLog = filepath.Join(dir, "args.log")
	fake := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do printf '[%%s]' "$a" >> %[1]q; done; echo >> %[1]q
case "$1 $2" in
"ps -aq") case "$*" in *shipit.app=*) printf 'aaaaaaaaaaaa1111\nbbbbbbbbbbbb2222\ncccccccccccc3333\n';; *) printf 'dddddddddddd4444\neeeeeeeeeeee5555\naaaaaaaaaaaa1111\n';; esac;;
"inspect "*) cat %[2]q;;
"stats "*) cat %[3]q;;
"info "*) echo %[4]q;;
"system df") cat %[5]q;;
*) echo "fake docker: unexpected $*" >&2; exit 1;;
esac
`, argLog, filepath.Join(dir, "inspect.json"), filepath.Join(dir, "stats.txt"), dir, filepath.Join(dir, "sysdf.txt"))
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	spec = Spec{App: app, Stage: "production", DeployTo: deployTo, Accessories: []string{"db"}}
	return spec, bin + ":" + os.Getenv("PATH"), argLog
}

// shConn runs commands in a local sh, like a remote host would.
type shConn struct {
	path string
	dir  string
}

func (c shConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	x := exec.CommandContext(ctx, "sh", "-c", cmd)
	x.Env = append(os.Environ(), "PATH="+c.path)
	x.Dir = c.dir
	x.Stdin, x.Stdout, x.Stderr = stdin, stdout, stderr
	err := x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func TestCollectHostThroughRealShell(t *testing.T) {
	started := time.Now().Add(-90 * time.Minute)
	spec, pathEnv, argLog := fakeHost(t, "shop", started)
	cwd := t.TempDir()
	src := Source{Name: "web1", Dial: func(context.Context) (Conn, error) { return shConn{pathEnv, cwd}, nil }}
	h := CollectHost(context.Background(), spec, src, time.Minute, true)

	if !h.Reachable || h.Error != "" {
		t.Fatalf("not reachable: %+v", h)
	}
	if len(h.Warnings) != 0 {
		t.Fatalf("warnings: %q", h.Warnings)
	}
	if _, err := os.Stat(filepath.Join(cwd, "PWNED")); err == nil {
		t.Fatal("deploy_to was not quoted: its command substitution ran")
	}
	if h.CurrentRelease != rel1 || h.Lock == nil || h.Lock.PreviousRelease != rel0 || h.Lock.GitSHA != "0123456789abcdef" {
		t.Fatalf("release/lock: %q %+v", h.CurrentRelease, h.Lock)
	}
	var names []string
	for _, c := range h.Containers {
		names = append(names, c.Name)
	}
	want := []string{"shop-" + rel1 + "-web-1", "shop-" + rel1 + "-worker-1", "shop-" + rel0 + "-web-1", "shop-db"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("containers (sorted: current release, older, accessories; name-filter accident dropped):\n got %v\nwant %v", names, want)
	}
	web, worker, old, db := h.Containers[0], h.Containers[1], h.Containers[2], h.Containers[3]
	if web.Kind != "app" || web.Service != "web" || !web.Current || web.State != "running" || web.Health != "healthy" || web.ID != "aaaaaaaaaaaa" {
		t.Errorf("web = %+v", web)
	}
	if web.UptimeSeconds < 89*60 || web.CPUPercent == nil || *web.CPUPercent != 1.49 || web.MemBytes == nil || *web.MemBytes != int64(12.5*(1<<20)) {
		t.Errorf("web figures = up %d cpu %v mem %v", web.UptimeSeconds, web.CPUPercent, web.MemBytes)
	}
	if worker.Health != "" || worker.MemBytes == nil || *worker.MemBytes != 516*1024 {
		t.Errorf("worker = %+v", worker)
	}
	if old.Current || old.State != "exited" || old.UptimeSeconds != 0 || old.CPUPercent != nil {
		t.Errorf("old web = %+v", old)
	}
	if db.Kind != "accessory" || db.Service != "db" || db.Release != "" {
		t.Errorf("accessory = %+v", db)
	}
	d := h.Disk
	if d.DeployTo.Path != spec.DeployTo || d.DeployTo.UsedBytes == nil || *d.DeployTo.UsedBytes < 4096 || d.DeployTo.FSSizeBytes == nil || d.DeployTo.FSUsePercent == nil {
		t.Errorf("deploy disk = %+v", d.DeployTo)
	}
	wantDocker := int64(1986000 + 12000 + 0 + 5361)
	if d.Docker.Path == "" || d.Docker.FSAvailBytes == nil || d.Docker.UsedBytes == nil || *d.Docker.UsedBytes != wantDocker || *d.Docker.ImagesBytes != 1986000 {
		t.Errorf("docker disk = %+v (used %v)", d.Docker, d.Docker.UsedBytes)
	}

	// The accessory name filter reached docker as one word, regexp-quoted.
	args, _ := os.ReadFile(argLog)
	mustHave(t, "docker args", string(args), "[ps][-aq][--no-trunc][--filter][label=shipit.app=shop]", "[--filter][name=^/?shop-db$]",
		"[stats][--no-stream][--format][{{json .}}][aaaaaaaaaaaa1111]")

	// Quick refreshes leave out the slow probes.
	os.Remove(argLog)
	quick := CollectHost(context.Background(), spec, src, time.Minute, false)
	args, _ = os.ReadFile(argLog)
	if strings.Contains(string(args), "[system][df]") || quick.Disk.DeployTo.UsedBytes != nil || quick.Disk.DeployTo.FSSizeBytes == nil {
		t.Errorf("quick refresh ran slow probes or lost df: %s %+v", args, quick.Disk.DeployTo)
	}

	// Text and JSON renderings carry the same facts.
	snap := Snapshot{App: "shop", Stage: "production", Hosts: []Host{h}}
	wide := strings.Join(Render(snap, 0, time.Now()), "\n")
	mustHave(t, "wide text", wide, "*shop-"+rel1+"-web-1", " shop-"+rel0+"-web-1", " shop-db")
	txt := strings.Join(Render(snap, 80, time.Now()), "\n")
	mustHave(t, "text", txt, "web1  release "+rel1, "git 0123456", "previous "+rel0, " *web-1 ", " *worker-1 ", "  web-1 ",
		"healthy", "1h30m", "12.5MiB", "516KiB", "1.5%", " db ", "(accessory)", "disk deploy: app ", "fs ", "docker: ")
	for _, l := range strings.Split(txt, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
	b, _ := json.Marshal(snap)
	mustHave(t, "json", string(b), `"current_release":"`+rel1+`"`, `"kind":"accessory"`, `"health":"healthy"`, `"mem_bytes":13107200`, `"fs_use_percent":`)
}

func mustHave(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// Probes that fail become warnings with the remote error; the host stays
// reachable.
func TestFailedProbesAreWarnings(t *testing.T) {
	out := "\n@@S current\n\n@@E current 1\nreadlink: no such file\n" +
		"\n@@S lock\n\n@@E lock 1\ncat: no such file\n" +
		"\n@@S ids\n\n@@E ids 1\npermission denied while trying to connect to the Docker daemon socket\n" +
		"\n@@S dfdeploy\n\n@@E dfdeploy 1\ndf: /var/deploy: No such file or directory\n"
	var h Host
	parseInto(&h, Spec{App: "shop", DeployTo: "/var/deploy"}, out, time.Now())
	w := strings.Join(h.Warnings, "\n")
	mustHave(t, "warnings", w, "not deployed: no current release under /var/deploy/shop",
		"docker ps: permission denied", "df /var/deploy: df: /var/deploy: No such file")
	if h.Containers == nil || len(h.Containers) != 0 {
		t.Errorf("containers = %#v, want an empty list (JSON [])", h.Containers)
	}
	var h2 Host
	parseInto(&h2, Spec{App: "shop"}, "\n@@S current\nreleases/r1\n@@E current 0\n\n@@S lock\nnot json\n@@E lock 0\n", time.Now())
	if h2.CurrentRelease != "r1" || !strings.Contains(strings.Join(h2.Warnings, ""), "shipit.lock is not a JSON object") {
		t.Errorf("h2 = %+v", h2)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0B": 0, "516KiB": 516 * 1024, "1.5GiB": 3 << 29, "1.986MB": 1986000, "5.361kB": 5361, "12B": 12, " 2.5GiB": 5 << 29} {
		got := parseSize(in)
		if got == nil || *got != want {
			t.Errorf("parseSize(%q) = %v, want %d", in, got, want)
		}
	}
	for _, bad := range []string{"", "--", "12XB"} {
		if got := parseSize(bad); got != nil {
			t.Errorf("parseSize(%q) = %d, want nil", bad, *got)
		}
	}
}

// stuckConn answers only when released (or its context ends).
type stuckConn struct{ release chan struct{} }

func (c stuckConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	select {
	case <-c.release:
		return 0, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

type cannedConn struct{ out string }

func (c cannedConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	io.WriteString(stdout, c.out)
	return 0, nil
}

const okOut = "\n@@S current\nreleases/" + rel1 + "\n@@E current 0\n"

// One dead host and one that hangs do not hold up the healthy one; the
// hanging one is cut off by the per-host timeout.
func TestCollectIsolatesHosts(t *testing.T) {
	srcs := []Source{
		{Name: "ok", Dial: func(context.Context) (Conn, error) { return cannedConn{okOut}, nil }},
		{Name: "dead", Dial: func(context.Context) (Conn, error) {
			return nil, errors.New("ssh root@dead:22: dial tcp: connection refused")
		}},
		{Name: "hung", Dial: func(context.Context) (Conn, error) { return stuckConn{make(chan struct{})}, nil }},
	}
	snap := Collect(context.Background(), goEach(len(srcs)), Spec{App: "shop"}, srcs, 200*time.Millisecond)
	ok, dead, hung := snap.Hosts[0], snap.Hosts[1], snap.Hosts[2]
	if !ok.Reachable || ok.CurrentRelease != rel1 {
		t.Errorf("ok = %+v", ok)
	}
	if dead.Reachable || !strings.Contains(dead.Error, "connection refused") {
		t.Errorf("dead = %+v", dead)
	}
	if hung.Reachable || !strings.Contains(hung.Error, "no answer within 200ms") {
		t.Errorf("hung = %+v", hung)
	}
	// JSON shape: error always present, warnings an array, containers
	// null only where nothing could be collected.
	b, _ := json.Marshal(snap)
	mustHave(t, "json", string(b), `"host":"ok","reachable":true,"error":""`, `"host":"dead","reachable":false,"error":"ssh root@dead:22`, `"containers":null`, `"containers":[]`, `"warnings":[]`)
	if got := snap.Unreachable(); strings.Join(got, ",") != "dead,hung" {
		t.Errorf("Unreachable() = %v", got)
	}
	txt := strings.Join(Render(snap, 0, time.Now()), "\n")
	mustHave(t, "text", txt, "dead  unreachable: ssh root@dead:22: dial tcp: connection refused", "hung  unreachable: no answer within")
}

// The watcher keeps refreshing a healthy host while another one hangs, and
// picks a host up again once it answers (the dial is retried every round).
func TestWatcherKeepsGoingPastAStuckHost(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	down := true
	var okRounds int
	srcs := []Source{
		{Name: "ok", Dial: func(context.Context) (Conn, error) {
			mu.Lock()
			okRounds++
			mu.Unlock()
			return cannedConn{okOut}, nil
		}},
		{Name: "stuck", Dial: func(context.Context) (Conn, error) { return stuckConn{release}, nil }},
		{Name: "flappy", Dial: func(context.Context) (Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return nil, errors.New("connection refused")
			}
			return cannedConn{okOut}, nil
		}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Watcher{Spec: Spec{App: "shop", Stage: "production"}, Sources: srcs, Interval: 10 * time.Millisecond, Timeout: time.Hour, FullEvery: time.Hour}
	w.Start(ctx, goEach(len(srcs)))
	waitFor := func(what string, cond func([]HostState) bool) []HostState {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if s := w.State(time.Now()); cond(s) {
				return s
			}
			select {
			case <-w.Changed():
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatalf("timed out waiting for %s: %+v", what, w.State(time.Now()))
		return nil
	}
	st := waitFor("3 rounds of ok, flappy down", func(s []HostState) bool {
		mu.Lock()
		defer mu.Unlock()
		return okRounds >= 3 && s[2].Collected && !s[2].Reachable
	})
	if st[1].Collected || st[1].BusyFor <= 0 {
		t.Fatalf("stuck host should still be collecting: %+v", st[1])
	}
	frame := strings.Join(Frame(w, 80, 40, time.Now()), "\n")
	mustHave(t, "frame", frame, "shipit monitor  shop  stage production", "1 unreachable", "q quits",
		"ok  release "+rel1, "stuck  connecting...", "flappy  unreachable: connection refused")
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor("flappy back", func(s []HostState) bool { return s[2].Reachable && s[2].CurrentRelease == rel1 })
	close(release)
	waitFor("stuck answered", func(s []HostState) bool { return s[1].Collected && s[1].Reachable })

	// A short terminal gets a cut frame that says so.
	small := Frame(w, 80, 6, time.Now())
	if len(small) != 6 || !strings.Contains(small[5], "more line(s): enlarge the window") {
		t.Errorf("small frame = %q", small)
	}
}

func TestDurationAndBytes(t *testing.T) {
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 12 * time.Minute: "12m", 3*time.Hour + 5*time.Minute: "3h05m", 50 * time.Hour: "2d02h", -time.Second: "0s"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512B", 1536: "1.5KiB", 5 << 20: "5.0MiB", 3 << 30: "3.0GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// goEach is a plain fan-out for tests (the CLI uses the orchestrator's).
func goEach(n int) Fanout {
	return func(ctx context.Context, fn func(ctx context.Context, i int)) {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); fn(ctx, i) }()
		}
		wg.Wait()
	}
}
