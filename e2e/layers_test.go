package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// layeredFiles is the demo web app with extra layers of random (so
// incompressible) data: a file per entry of sizes, in this order.
func layeredFiles(sizes map[string]int, order ...string) map[string]string {
	files := appFiles("1")
	df := "FROM " + harness.BaseImage + "\nCOPY www /www\n"
	for _, name := range order {
		b := make([]byte, sizes[name])
		_, _ = rand.Read(b)
		files[name] = string(b)
		df += "COPY " + name + " /" + name + "\n"
	}
	files["Dockerfile"] = df + "CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
	return files
}

// proxied is a stage host reached through a proxy; newApp only reads Addr.
func proxied(p *harness.Proxy) *harness.SSHD { return &harness.SSHD{Addr: p.Addr} }

// startShipit runs shipit in the background; onLine sees each output line.
func (a *app) startShipit(onLine func(string), args ...string) (wait func() (string, int)) {
	a.t.Helper()
	full := append([]string{"--known-hosts", a.env.KnownHosts, "-i", a.env.ClientKey, "--ssh-config", a.env.SSHConfig}, args...)
	cmd := exec.Command(a.binary(), full...)
	cmd.Dir = a.dir
	cmd.Env = append(append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1"), a.env2...)
	pr, pw, err := os.Pipe()
	if err != nil {
		a.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	pw.Close()
	var out strings.Builder
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if onLine != nil {
				onLine(sc.Text())
			}
		}
	}()
	return func() (string, int) {
		err := cmd.Wait()
		<-done
		pr.Close()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		mu.Lock()
		defer mu.Unlock()
		a.t.Logf("$ shipit %s (exit %d)\n%s", strings.Join(args, " "), code, out.String())
		return out.String(), code
	}
}

var layersRe = regexp.MustCompile(`layers: (\d+) sent, (\d+) staged earlier, (\d+) on host; (\d+) bytes`)

// layerFigures reads the deploy:build log line of a deploy's output.
func layerFigures(t testing.TB, out string) (sent, reused, onHost int, bytes int64) {
	t.Helper()
	m := layersRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no image transfer figures in the output:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	reused, _ = strconv.Atoi(m[2])
	onHost, _ = strconv.Atoi(m[3])
	bytes, _ = strconv.ParseInt(m[4], 10, 64)
	return
}

func removeLocalImages(t testing.TB, env *harness.Env, app string) {
	t.Cleanup(func() {
		out := env.Docker(t, nil, "image", "ls", "-q", "--filter", "reference="+app+"-*", "--filter", "reference="+app+"/*")
		if ids := strings.Fields(out); len(ids) > 0 {
			_, _ = exec.Command("docker", append([]string{"image", "rm", "-f"}, ids...)...).CombinedOutput()
		}
	})
}

// The network drops while layers stream to a host (the upload is throttled
// so that the cut lands mid-layer, after another layer is complete): the engine gets nothing, complete layers
// wait in the staging directory, and the next deploy removes the partial
// file and sends only the layers still missing.
func TestLocalBuildCutMidTransferResumes(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 30)
	proxy := env.StartProxy(t, host)
	a := newApp(t, env, "cutxfer", "/var/deploy", []*harness.SSHD{proxied(proxy)}, "", "build = \"local\"\n")
	removeLocalImages(t, env, "cutxfer")
	a.commit(layeredFiles(map[string]int{"small.bin": 4 << 20, "big.bin": 40 << 20}, "small.bin", "big.bin"))
	staging := filepath.Join(host.DeployRoot, "cutxfer", ".image-layers")

	var cut sync.Once
	cutDone := make(chan struct{})
	var seen []string // staging states, for a failure message
	watch := func(line string) {
		if !strings.Contains(line, "▸ [6/12] deploy:build") {
			return
		}
		proxy.SetRate(6 << 20)
		go func() {
			defer close(cutDone)
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				// Cut once one big layer is complete and another is partway,
				// with over 2 MB of it still to go so that no data in flight
				// completes it. The save stream orders layers by their random
				// IDs, so small.bin (4 MB) may come before big.bin (40 MB) or
				// after it, and a complete layer is renamed only once its
				// check has crossed the throttled link behind the other's
				// data: the partial one is either layer at 1-1.5 MB, or
				// big.bin at 5-36 MB.
				var complete, partial bool
				ents, _ := os.ReadDir(staging)
				for _, e := range ents {
					fi, err := e.Info()
					if err != nil || fi.Size() < 1<<20 {
						continue
					}
					n := fi.Size()
					complete = complete || stagedLayer(e.Name())
					partial = partial || strings.Contains(e.Name(), ".part-") && (n < 3<<19 || n > 5<<20 && n < 36<<20)
				}
				seen = append(seen, stagingState(ents))
				if complete && partial {
					cut.Do(proxy.Cut)
					t.Logf("cut at staging state %s", seen[len(seen)-1])
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	out, code := a.startShipit(watch, "deploy", "-s", "production")()
	<-cutDone
	if code == 0 {
		t.Fatalf("the deploy survived the cut:\n%s\nstaging seen:\n%s", out, strings.Join(compact(seen), "\n"))
	}
	// The engine has no new image; complete layers and a partial file wait.
	if imgs := env.Docker(t, host, "image", "ls", "-q", "--filter", "reference=cutxfer/web"); strings.TrimSpace(imgs) != "" {
		t.Fatalf("the engine has an image after the cut: %s", imgs)
	}
	var complete, partial int
	ents, _ := os.ReadDir(staging)
	for _, e := range ents {
		switch {
		case strings.Contains(e.Name(), ".part-"):
			partial++
		case stagedLayer(e.Name()):
			complete++
		}
	}
	if complete == 0 || partial == 0 {
		t.Fatalf("staging after the cut: %v", ents)
	}

	proxy.SetRate(0)
	waitNextSecond(time.Now().UTC().Format("20060102-150405"))
	up := proxy.Up()
	out = a.mustShipit("deploy", "-s", "production")
	sentNow := proxy.Up() - up
	// (A layer whose check was in flight at the cut may have been renamed
	// into place by the host after the client went away.)
	sent, reused, _, bytes := layerFigures(t, out)
	if reused < complete || sent == 0 || sent+reused != 3 {
		t.Fatalf("resumed deploy: %d layers sent, %d staged earlier; %d of 3 were complete after the cut", sent, reused, complete)
	}
	// Only the rest crossed the wire: not the complete layers again.
	if bytes > 42<<20 || sentNow > bytes+4<<20 {
		t.Fatalf("resumed deploy sent %d layer bytes, %d bytes on the wire", bytes, sentNow)
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Fatalf("staging directory left after a successful deploy: %v", err)
	}
	rel := filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/cutxfer/current")))
	if ids := webContainers(t, env, host, "cutxfer", rel); len(ids) != 1 || health(t, env, host, ids[0]) != "healthy" {
		t.Fatalf("release %s not healthy after the resumed deploy: %v", rel, ids)
	}
}

// stagedLayer says whether a staging directory entry is a complete layer:
// decompressed on arrival (.tar) or not (.gz).
func stagedLayer(name string) bool {
	return !strings.Contains(name, ".part-") && (strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".gz"))
}

// stagingState is "name=size ..." for the files in a staging directory.
func stagingState(ents []os.DirEntry) string {
	var b strings.Builder
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "%s=%d ", e.Name()[:min(len(e.Name()), 8)]+"…"+e.Name()[max(0, len(e.Name())-18):], fi.Size())
		}
	}
	return b.String()
}

// compact drops repeated states.
func compact(states []string) []string {
	var out []string
	for _, s := range states {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// A host whose engine runs out of disk while loading: the deploy fails in
// deploy:build with the engine's message and a hint, before anything is
// started or switched; the previous release keeps serving.
func TestLocalBuildDiskFullFailsBeforeSwitch(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 31)
	a := newApp(t, env, "fullxfer", "/var/deploy", []*harness.SSHD{host}, "", "build = \"local\"\n")
	removeLocalImages(t, env, "fullxfer")
	a.mustShipit("deploy", "-s", "production")
	r1 := filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/fullxfer/current")))

	// The engine unpacks docker load archives in <data-root>/tmp: make it 1 MB.
	root := strings.TrimSpace(env.Docker(t, host, "info", "--format", "{{.DockerRootDir}}"))
	env.HostRun(t, host, "mount -t tmpfs -o size=1m shipit-full "+filepath.Join(root, "tmp"))
	t.Cleanup(func() {
		_, _ = exec.Command("nsenter", "-t", strconv.Itoa(host.Pid), "-m", "--", "umount", filepath.Join(root, "tmp")).CombinedOutput()
	})

	waitNextSecond(r1)
	a.commit(layeredFiles(map[string]int{"big.bin": 6 << 20}, "big.bin"))
	out, code := a.shipit("deploy", "-s", "production")
	if code == 0 {
		t.Fatalf("deploy to a full disk succeeded:\n%s", out)
	}
	mustContain(t, "full-disk deploy", out, "✗ [6/12] deploy:build", "no space left on device", "hint: free disk space on")
	if strings.Contains(out, "[7/12] deploy:start") {
		t.Fatalf("the release was started after the transfer failed:\n%s", out)
	}
	if cur := filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/fullxfer/current"))); cur != r1 {
		t.Fatalf("current moved to %s", cur)
	}
	if ids := webContainers(t, env, host, "fullxfer", r1); len(ids) != 1 || serve(t, env, host, ids[0]) != "version 1" {
		t.Fatalf("previous release not serving: %v", ids)
	}
}

// On a terminal, a transfer shows per host the bytes to send, sent, the
// throughput and the ETA while it runs; off a terminal only the per-image
// lines and the summary (checked by the other tests).
func TestLocalBuildProgressOnTTY(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 29)
	proxy := env.StartProxy(t, host)
	a := newApp(t, env, "ttyxfer", "/var/deploy", []*harness.SSHD{proxied(proxy)}, "", "build = \"local\"\n")
	removeLocalImages(t, env, "ttyxfer")
	a.commit(layeredFiles(map[string]int{"big.bin": 12 << 20}, "big.bin"))
	proxy.SetRate(4 << 20) // three seconds of transfer
	// script(1) gives shipit a pseudo-terminal for its output.
	args := []string{"--known-hosts", env.KnownHosts, "-i", env.ClientKey, "--ssh-config", env.SSHConfig, "deploy", "-s", "production"}
	cmdline := a.binary()
	for _, s := range args {
		cmdline += " '" + s + "'"
	}
	cmd := exec.Command("script", "-qefc", cmdline, "/dev/null")
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("deploy on a terminal: %v", err)
	}
	if !regexp.MustCompile(`images: sending \d/\d layers, [\d.]+ [kM]B of [\d.]+ MB, [\d.]+ [kM]B/s, ETA`).Match(out) {
		t.Fatal("no live transfer progress on a terminal")
	}
}

// A host on a current engine (Docker Engine 28.5.2, built from the Go module
// proxy by scripts/testenv.sh) with the containerd image store: local builds
// reach it and run, an unchanged image costs nothing (that store names an
// image by the manifest it wrote on load, not by its config), a changed
// layer is the only one sent the next time, the images reference only blobs
// the store keeps (docker save of them works there), and a rollback finds
// the previous image.
func TestLocalBuildToCurrentEngineWithContainerdStore(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHostWith(t, 16, harness.IsolatedOpts{Dockerd: harness.CurrentDockerd, ContainerdStore: true})
	info := env.Docker(t, host, "info", "--format", "{{.ServerVersion}} {{json .DriverStatus}}")
	mustContain(t, "the host's engine", info, "28.5.2", "io.containerd.snapshotter.v1")
	a := newApp(t, env, "ctrdxfer", "/var/deploy", []*harness.SSHD{host}, "", "build = \"local\"\n")
	removeLocalImages(t, env, "ctrdxfer")
	release := func(version string) string { t.Helper(); return liveRelease(t, env, host, "ctrdxfer", version) }
	files := layeredFiles(map[string]int{"data.bin": 2 << 20}, "data.bin")
	a.commit(files)
	out := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "first deploy", out, "images: 1 sent, 0 already on host")
	r1 := release("1")

	waitNextSecond(r1)
	a.commit(map[string]string{"README": "not in the image\n"})
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "unchanged image", out, "images: 0 sent, 1 already on host")
	if sent, _, _, bytes := layerFigures(t, out); sent != 0 || bytes != 0 {
		t.Fatalf("unchanged image: %d layers, %d bytes sent", sent, bytes)
	}
	r2 := release("1")

	// The first deploy sent every layer, the busybox base's too: the host
	// got that image by docker load, so its blobs are not shipit's to name.
	waitNextSecond(r2)
	files = layeredFiles(map[string]int{"data.bin": 2 << 20}, "data.bin")
	files["www/index.html"] = "version 2\n"
	a.commit(files)
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "changed image", out, "images: 1 sent, 0 already on host")
	if sent, _, onHost, bytes := layerFigures(t, out); sent != 2 || onHost != 2 || bytes < 2<<20 || bytes > 3<<20 {
		t.Fatalf("www and data.bin changed: %d layers sent (%d bytes), %d on host; want 2 sent, the base's 2 on host", sent, bytes, onHost)
	}
	r3 := release("2")

	waitNextSecond(r3)
	files["data.bin"] = layeredFiles(map[string]int{"data.bin": 1 << 20}, "data.bin")["data.bin"]
	a.commit(files)
	out = a.mustShipit("deploy", "-s", "production")
	if sent, _, onHost, bytes := layerFigures(t, out); sent != 1 || onHost != 3 || bytes > 2<<20 {
		t.Fatalf("data.bin changed: %d layers sent (%d bytes), %d on host; want 1 sent, 3 on host", sent, bytes, onHost)
	}
	r4 := release("2")
	for _, rel := range []string{r3, r4} {
		env.HostRun(t, host, "docker save ctrdxfer/web:"+rel+" >/dev/null")
	}

	out = a.mustShipit("rollback", "-s", "production")
	if got := release("2"); got != r3 {
		t.Fatalf("rolled back to %s, want %s:\n%s", got, r3, out)
	}
}

// liveRelease is the release current on host, after checking that it runs
// one healthy web container serving version.
func liveRelease(t *testing.T, env *harness.Env, host *harness.SSHD, app, version string) string {
	t.Helper()
	rel := filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/"+app+"/current")))
	ids := webContainers(t, env, host, app, rel)
	if len(ids) != 1 || health(t, env, host, ids[0]) != "healthy" || serve(t, env, host, ids[0]) != "version "+version {
		t.Fatalf("release %s: containers %v, want one healthy serving version %s", rel, ids, version)
	}
	return rel
}

// shipit on a machine whose own engine is current (Engine 28.5.2 with the
// containerd image store: docker save writes the OCI layout, with layers as
// compressed blobs named by their compressed digest) deploying to an Engine
// 20.10 host: layers are recognised by their content, an unchanged image
// costs nothing and a changed layer is the only one sent.
func TestLocalBuildFromCurrentEngine(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	dev := env.StartIsolatedHostWith(t, 17, harness.IsolatedOpts{Dockerd: harness.CurrentDockerd, ContainerdStore: true})
	host := env.StartIsolatedHost(t, 18)
	a := newApp(t, env, "fromctrd", "/var/deploy", []*harness.SSHD{host}, "", "build = \"local\"\n")
	a.env2 = []string{"DOCKER_HOST=" + dev.DockerHost}
	files := layeredFiles(map[string]int{"data.bin": 2 << 20}, "data.bin")
	a.commit(files)
	out := a.mustShipit("deploy", "-s", "production")
	mustContain(t, "first deploy", out, "images: 1 sent, 0 already on host")
	r1 := liveRelease(t, env, host, "fromctrd", "1")
	if imgs := env.Docker(t, dev, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, "fromctrd/web:"+r1) {
		t.Fatalf("the image was not built by the current engine: %s", imgs)
	}

	waitNextSecond(r1)
	a.commit(map[string]string{"README": "not in the image\n"})
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "unchanged image", out, "images: 0 sent, 1 already on host")
	r2 := liveRelease(t, env, host, "fromctrd", "1")

	waitNextSecond(r2)
	files["data.bin"] = layeredFiles(map[string]int{"data.bin": 1 << 20}, "data.bin")["data.bin"]
	a.commit(files)
	out = a.mustShipit("deploy", "-s", "production")
	if sent, _, onHost, bytes := layerFigures(t, out); sent != 1 || onHost != 3 || bytes > 2<<20 {
		t.Fatalf("data.bin changed: %d layers sent (%d bytes), %d on host; want 1 sent, 3 on host", sent, bytes, onHost)
	}
	liveRelease(t, env, host, "fromctrd", "1")
}
