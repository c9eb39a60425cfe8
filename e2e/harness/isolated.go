package harness

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MaxIsolatedHosts bounds n in StartIsolatedHost (address pools 10.225-10.255).
const MaxIsolatedHosts = 31

// CurrentDockerd is a current Docker Engine's dockerd, built from the Go
// module proxy by scripts/testenv.sh (Debian packages Engine 20.10 only).
const CurrentDockerd = "/var/cache/shipit/dockerd-v28.5.2"

// IsolatedOpts choose an isolated host's engine.
type IsolatedOpts struct {
	Dockerd         string // the dockerd binary; "" is Debian's (PATH)
	ContainerdStore bool   // the containerd image store instead of a graph driver
}

// engine is an extra Docker engine owned by one isolated host.
type engine struct {
	opts    IsolatedOpts
	n       int
	dir     string
	sock    string // unix:///.../docker.sock
	bridge  string
	log     string
	cmd     *exec.Cmd
	done    chan struct{}
	lock    *os.File
	pidFile string // /run/shipit-e2e/shbrN.pid: lets a later run kill a leaked engine
}

// StartIsolatedHost starts host number n (1..MaxIsolatedHosts), which looks like
// a separate machine:
//
//   - its own Docker engine: bridge shbrN (10.223.N.1/24), address pool
//     10.(224+N).0.0/16 split in /24s, --iptables=false --ip-masq=false, own
//     data root, exec root and unix socket; the base image is loaded into it;
//   - an sshd (OpenSSH, root logins with the env's key) in its own private mount
//     namespace where a directory of its own (SSHD.DeployRoot) is bind-mounted
//     over /var/deploy, and with `SetEnv DOCKER_HOST=unix://<its socket>`;
//     its root's .bashrc is a fresh Debian's (Env.MachineBashrc).
//
// The engine runs in the host's mount namespace too, so bind mounts of
// /var/deploy/... paths in containers see the host's own files.
//
// Number n is a machine-wide resource: while one test holds host n, another test
// process asking for n waits (file lock). All is torn down in t.Cleanup:
// the engine's containers and networks, the engine, the bridge, the sshd.
func (e *Env) StartIsolatedHost(t testing.TB, n int) *SSHD {
	t.Helper()
	return e.StartIsolatedHostWith(t, n, IsolatedOpts{})
}

// StartIsolatedHostWith is StartIsolatedHost with another engine.
func (e *Env) StartIsolatedHostWith(t testing.TB, n int, opts IsolatedOpts) *SSHD {
	t.Helper()
	if n < 1 || n > MaxIsolatedHosts {
		t.Fatalf("harness: isolated host number %d out of range 1..%d", n, MaxIsolatedHosts)
	}
	if opts.Dockerd != "" {
		if _, err := os.Stat(opts.Dockerd); err != nil {
			t.Fatalf("harness: dockerd %s for isolated host %d: %v (scripts/testenv.sh builds it)", opts.Dockerd, n, err)
		}
	}
	en := &engine{n: n, bridge: fmt.Sprintf("shbr%d", n), opts: opts}
	en.acquire(t)
	t.Cleanup(en.release)
	en.cleanupStale(t)

	dir, err := os.MkdirTemp(e.Dir, fmt.Sprintf("h%d-", n))
	if err != nil {
		t.Fatal(err)
	}
	en.dir = dir
	en.sock = "unix://" + filepath.Join(dir, "docker.sock")
	en.log = filepath.Join(dir, "dockerd.log")

	// Bridge for the engine's default network.
	runCmd(t, "", nil, "ip", "link", "add", "name", en.bridge, "type", "bridge")
	t.Cleanup(func() { en.deleteLinks() })
	runCmd(t, "", nil, "ip", "addr", "add", fmt.Sprintf("10.223.%d.1/24", n), "dev", en.bridge)
	runCmd(t, "", nil, "ip", "link", "set", en.bridge, "up")

	s := e.StartSSHD(t, SSHDOpts{
		Isolated:   true,
		DeployRoot: filepath.Join(dir, "deploy"),
		DockerHost: en.sock,
	})
	s.engine = en

	en.start(t, s.Pid)
	t.Cleanup(func() { en.stop(t) })

	// Base image: the default engine's copy, piped in.
	if err := pipeImage(BaseImage, en.sock); err != nil {
		t.Fatalf("harness: loading %s into isolated host %d: %v\n--- %s (tail) ---\n%s", BaseImage, n, err, en.log, tailFile(en.log, 30))
	}
	return s
}

// acquire takes the machine-wide lock for host number n (waits up to 10 min).
func (en *engine) acquire(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll("/run/shipit-e2e", 0o755); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/run/shipit-e2e/%s.lock", en.bridge)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			t.Fatalf("harness: flock %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("harness: isolated host %d is held by another test process for 10 minutes (%s)", en.n, path)
		}
		if !logged {
			t.Logf("harness: waiting for isolated host %d (held by another test process)", en.n)
			logged = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	en.lock = f
	en.pidFile = fmt.Sprintf("/run/shipit-e2e/%s.pid", en.bridge)
}

func (en *engine) release() {
	if en.lock != nil {
		os.Remove(en.pidFile)
		syscall.Flock(int(en.lock.Fd()), syscall.LOCK_UN)
		en.lock.Close()
		en.lock = nil
	}
}

// cleanupStale removes what a killed earlier run may have left for number n:
// its dockerd, its bridge and the networks of its address pool.
func (en *engine) cleanupStale(t testing.TB) {
	t.Helper()
	if b, err := os.ReadFile(en.pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.HasSuffix(exe, "/dockerd") || exe == CurrentDockerd {
				t.Logf("harness: stopping leaked dockerd %d of isolated host %d", pid, en.n)
				syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.Remove(en.pidFile)
	}
	en.deleteLinks()
}

// deleteLinks deletes bridge shbrN and the bridges holding addresses of the
// engine's pool 10.(224+n).0.0/16 (compose project networks).
func (en *engine) deleteLinks() {
	_, _ = run("", nil, nil, "ip", "link", "del", en.bridge)
	out, err := run("", nil, nil, "ip", "-o", "-4", "addr", "show")
	if err != nil {
		return
	}
	prefix := fmt.Sprintf("10.%d.", 224+en.n)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// "5: br-abc    inet 10.225.0.1/24 brd ... scope global br-abc"
		if len(f) >= 4 && f[2] == "inet" && strings.HasPrefix(f[3], prefix) && strings.HasPrefix(f[1], "br-") {
			_, _ = run("", nil, nil, "ip", "link", "del", f[1])
		}
	}
}

// start runs dockerd inside the mount namespace of process nsPid.
func (en *engine) start(t testing.TB, nsPid int) {
	t.Helper()
	cfg := filepath.Join(en.dir, "daemon.json")
	conf := "{}\n"
	if en.opts.ContainerdStore {
		conf = `{"features": {"containerd-snapshotter": true}}` + "\n"
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(en.log)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-t", strconv.Itoa(nsPid), "-m", "--",
		cmp.Or(en.opts.Dockerd, "dockerd"),
		"--config-file", cfg,
		"--data-root", filepath.Join(en.dir, "data"),
		"--exec-root", filepath.Join(en.dir, "exec"),
		"--pidfile", filepath.Join(en.dir, "docker.pid"),
		"-H", en.sock,
		// Never --bridge=none, and a fresh data root every time: with
		// --bridge=none, or when it restarts on a data root that has a
		// default "bridge" network and address pools are set, an engine
		// deletes the interface docker0, the default engine's.
		"--bridge", en.bridge,
		"--iptables=false",
		"--ip-masq=false",
		"--default-address-pool", fmt.Sprintf("base=10.%d.0.0/16,size=24", 224+en.n),
		"--containerd-namespace", fmt.Sprintf("shipit-h%d", en.n),
		"--containerd-plugins-namespace", fmt.Sprintf("shipit-h%d-plugins", en.n),
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("harness: starting dockerd for isolated host %d: %v", en.n, err)
	}
	en.cmd = cmd
	en.done = make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(en.done)
	}()
	// nsenter execs dockerd in place: same pid.
	_ = os.WriteFile(en.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-en.done:
			t.Fatalf("harness: dockerd of isolated host %d exited during startup\n--- %s (tail) ---\n%s", en.n, en.log, tailFile(en.log, 30))
		default:
		}
		if _, err := run("", []string{"DOCKER_HOST=" + en.sock}, nil, "docker", "version", "--format", "{{.Server.Version}}"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			en.stop(t)
			t.Fatalf("harness: dockerd of isolated host %d not answering after 60s\n--- %s (tail) ---\n%s", en.n, en.log, tailFile(en.log, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop removes the engine's containers and networks, then stops it.
func (en *engine) stop(t testing.TB) {
	if en.cmd == nil {
		return
	}
	select {
	case <-en.done:
	default:
		env := []string{"DOCKER_HOST=" + en.sock}
		if out, err := run("", env, nil, "docker", "ps", "-aq"); err == nil {
			if ids := strings.Fields(out); len(ids) > 0 {
				if _, err := run("", env, nil, "docker", append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
					t.Logf("harness: removing containers of isolated host %d: %v", en.n, err)
				}
			}
		}
		_, _ = run("", env, nil, "docker", "network", "prune", "-f")
		_ = en.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-en.done:
		case <-time.After(30 * time.Second):
			t.Logf("harness: dockerd of isolated host %d ignored SIGTERM for 30s; killing it", en.n)
			_ = en.cmd.Process.Kill()
			<-en.done
		}
	}
	en.cmd = nil
	en.deleteLinks()
}

// pipeImage runs `docker save image | DOCKER_HOST=dst docker load`.
func pipeImage(image, dst string) error {
	save := exec.Command("docker", "save", image)
	save.Env = os.Environ()
	for i, kv := range save.Env {
		if strings.HasPrefix(kv, "DOCKER_HOST=") {
			save.Env[i] = "DOCKER_HOST="
		}
	}
	load := exec.Command("docker", "load", "-q")
	load.Env = append(os.Environ(), "DOCKER_HOST="+dst)
	pr, pw := io.Pipe()
	save.Stdout = pw
	load.Stdin = pr
	var saveErr, loadErr strings.Builder
	save.Stderr = &saveErr
	load.Stderr = &loadErr
	if err := load.Start(); err != nil {
		return err
	}
	if err := save.Start(); err != nil {
		pw.Close()
		load.Wait()
		return err
	}
	serr := save.Wait()
	pw.CloseWithError(serr)
	lerr := load.Wait()
	pr.Close()
	if serr != nil {
		return fmt.Errorf("docker save: %v: %s", serr, saveErr.String())
	}
	if lerr != nil {
		return fmt.Errorf("docker load: %v: %s", lerr, loadErr.String())
	}
	return nil
}

// StartIsolatedHosts starts isolated hosts ns... concurrently (engines take a
// second or two each to start) and returns them in order.
func (e *Env) StartIsolatedHosts(t testing.TB, ns ...int) []*SSHD {
	t.Helper()
	hosts := make([]*SSHD, len(ns))
	msgs := make([]string, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ft := &fatalCatcher{TB: t}
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(fatalPanic); !ok {
						panic(r)
					}
				}
				msgs[i] = ft.msg
			}()
			hosts[i] = e.StartIsolatedHost(ft, n)
		}()
	}
	wg.Wait()
	var failed []string
	for _, m := range msgs {
		if m != "" {
			failed = append(failed, m)
		}
	}
	if len(failed) > 0 {
		t.Fatal(strings.Join(failed, "\n"))
	}
	return hosts
}

// fatalCatcher lets a goroutine call harness functions that use t.Fatal(f):
// Fatal records the message and panics; the goroutine recovers.
type fatalCatcher struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

type fatalPanic struct{}

func (f *fatalCatcher) Helper() {}

func (f *fatalCatcher) Fatal(args ...any) {
	f.mu.Lock()
	f.msg = strings.TrimSpace(fmt.Sprintln(args...))
	f.mu.Unlock()
	panic(fatalPanic{})
}

func (f *fatalCatcher) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	panic(fatalPanic{})
}
