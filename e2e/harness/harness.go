// Package harness gives end-to-end tests real SSH hosts on this machine: sshd
// processes on loopback addresses (127.0.0.x:port), optionally made to look like
// separate machines ("isolated hosts": own Docker engine, own /var/deploy).
//
// It needs root and the tools installed by scripts/testenv.sh (`make test` runs
// it): /usr/sbin/sshd, ssh-keygen, ip, unshare, nsenter, a running dockerd, the
// docker compose v2 plugin and the local image shipit-busybox:latest. New fails
// the test loudly when any of these is missing; it never skips.
//
// Everything a test starts is stopped in t.Cleanup.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
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

// BaseImage is the local image every Docker engine of the harness has.
const BaseImage = "shipit-busybox:latest"

// SSHDPath is the OpenSSH server binary.
const SSHDPath = "/usr/sbin/sshd"

const setupHint = "run `make test` (or `scripts/testenv.sh` as root) to set up the test environment"

// Env is one test's world: a temp dir, a client key, a known_hosts file and an
// empty ssh config file.
type Env struct {
	Dir        string // temp dir of the test
	ClientKey  string // private ed25519 key (no passphrase); public key at ClientKey+".pub"
	ClientPub  string // authorized_keys line of the client key
	KnownHosts string // known_hosts file: StartSSHD adds every started sshd unless opts.NoKnownHost
	SSHConfig  string // an empty ssh config file (use it instead of ~/.ssh/config)

	mu sync.Mutex
}

// SSHDOpts configures StartSSHD.
type SSHDOpts struct {
	// ListenIP is the loopback address to listen on (default 127.0.0.1).
	ListenIP string
	// Port to listen on; 0 picks a free one.
	Port int
	// ForwardOnly makes a jump host: every command is refused
	// (ForceCommand /bin/false, PermitTTY no) but TCP forwarding (ssh -J) works.
	ForwardOnly bool
	// DockerHost, when set, is put in every session's environment
	// (sshd SetEnv DOCKER_HOST=...).
	DockerHost string
	// Isolated runs sshd in its own private mount namespace with DeployRoot
	// (a fresh dir under Env.Dir when empty) bind-mounted over /var/deploy,
	// and a fresh Debian's root .bashrc over this machine's (MachineBashrc).
	// A non-empty DeployRoot implies Isolated.
	Isolated   bool
	DeployRoot string
	// NoKnownHost keeps the host key out of Env.KnownHosts (for unknown-host tests;
	// add it later with AddKnownHost).
	NoKnownHost bool
	// ExtraConfig is appended verbatim to the generated sshd_config.
	ExtraConfig string
}

// SSHD is a running OpenSSH server.
type SSHD struct {
	Addr        string // "127.0.0.x:port"
	Host        string // "127.0.0.x"
	Port        int
	User        string // "root"
	HostKeyLine string // known_hosts line: "[host]:port ssh-ed25519 AAAA..."
	HostKeyPub  string // "ssh-ed25519 AAAA..."
	HostKeyFile string // the private host key
	Dir         string // this sshd's directory (config, keys, logs)
	Config      string // sshd_config path
	LogFile     string // sshd's stderr
	Pid         int    // sshd's pid (for isolated hosts: a process in the host's mount namespace)
	DockerHost  string // DOCKER_HOST for sessions of this host ("" = the default engine)
	DeployRoot  string // directory seen as /var/deploy by this host ("" = the real /var/deploy)
	Isolated    bool   // runs in its own mount namespace

	engine *engine // own Docker engine (StartIsolatedHost)
	cmd    *exec.Cmd
	done   chan struct{}
	waitMu sync.Mutex
	err    error
}

// Exited reports whether the sshd process has exited.
func (s *SSHD) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last lines of the sshd log.
func (s *SSHD) LogTail() string { return tailFile(s.LogFile, 30) }

var (
	prereqOnce sync.Once
	prereqErr  error
)

func checkPrereqs() error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root (sshd on loopback, extra Docker engines and mount namespaces need root)")
	}
	if _, err := os.Stat(SSHDPath); err != nil {
		problems = append(problems, SSHDPath+" missing (package openssh-server)")
	}
	for _, b := range []string{"ssh", "ssh-keygen", "docker", "ip", "unshare", "nsenter", "git"} {
		if _, err := exec.LookPath(b); err != nil {
			problems = append(problems, b+" not on PATH")
		}
	}
	if len(problems) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("dockerd not answering `docker info`: %v: %s", err, strings.TrimSpace(string(out))))
		} else {
			if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
				problems = append(problems, fmt.Sprintf("docker compose v2 plugin missing: %v: %s", err, strings.TrimSpace(string(out))))
			}
			if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", BaseImage).CombinedOutput(); err != nil {
				problems = append(problems, fmt.Sprintf("image %s missing: %s", BaseImage, strings.TrimSpace(string(out))))
			}
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		problems = append(problems, "cannot create /run/sshd: "+err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("e2e test environment not ready:\n  - %s\n%s", strings.Join(problems, "\n  - "), setupHint)
	}
	return nil
}

// New prepares a test environment: a temp dir, a client ed25519 key, an empty
// known_hosts and an empty ssh config. It fails the test (t.Fatal) when the
// machine lacks sshd, docker, compose v2, the base image or a running dockerd.
func New(t testing.TB) *Env {
	t.Helper()
	prereqOnce.Do(func() {
		prereqErr = checkPrereqs()
		removeLeakedDirs()
	})
	if prereqErr != nil {
		t.Fatal(prereqErr)
	}
	dir := shortTempDir(t, "shipit-e2e")
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Env{
		Dir:        dir,
		ClientKey:  filepath.Join(dir, "id_ed25519"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		SSHConfig:  filepath.Join(dir, "ssh_config"),
	}
	runCmd(t, "", nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shipit-e2e", "-f", e.ClientKey)
	pub, err := os.ReadFile(e.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	e.ClientPub = strings.TrimSpace(string(pub))
	for _, f := range []string{e.KnownHosts, e.SSHConfig} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// SSHArgs returns OpenSSH client arguments that log in to s as root with the
// env's key, known_hosts and empty config (append the remote command).
func (e *Env) SSHArgs(s *SSHD) []string {
	return []string{
		"-F", e.SSHConfig,
		"-i", e.ClientKey,
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + e.KnownHosts,
		"-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(s.Port),
		s.User + "@" + s.Host,
	}
}

// SSH runs cmd on s with the OpenSSH client and returns stdout; it fails the
// test on a non-zero exit.
func (e *Env) SSH(t testing.TB, s *SSHD, cmd string) string {
	t.Helper()
	return runCmd(t, "", nil, "ssh", append(e.SSHArgs(s), cmd)...)
}

// AddKnownHost appends s's host key line to e.KnownHosts (once).
func (e *Env) AddKnownHost(s *SSHD) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := os.ReadFile(e.KnownHosts)
	for _, l := range strings.Split(string(b), "\n") {
		if l == s.HostKeyLine {
			return
		}
	}
	f, err := os.OpenFile(e.KnownHosts, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s.HostKeyLine + "\n"); err != nil {
		panic(err)
	}
}

// FreePort returns a TCP port that is free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePortOn(t, "127.0.0.1")
}

// Ports are picked below the kernel's ephemeral range (32768-60999 by
// default): the load generators open thousands of client connections,
// each on an ephemeral port, and a port the kernel handed out as free
// could be a client's local port by the time a server binds it (seen:
// Traefik's "bind: address already in use"). A port is free on every
// address (Traefik binds 0.0.0.0) and handed out once per process.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 2000 {
		port := portLow + mrand.IntN(portHigh-portLow)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		if ip != "" && ip != "0.0.0.0" {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				continue
			}
			l2.Close()
		}
		portsGiven[port] = true
		return port
	}
	t.Fatalf("harness: no free port on %s between %d and %d", ip, portLow, portHigh)
	return 0
}

// StartSSHD starts an sshd for root logins with the env's client key and
// registers its host key in e.KnownHosts (unless opts.NoKnownHost). It is
// stopped in t.Cleanup.
func (e *Env) StartSSHD(t testing.TB, opts SSHDOpts) *SSHD {
	t.Helper()
	if opts.ListenIP == "" {
		opts.ListenIP = "127.0.0.1"
	}
	if opts.DeployRoot != "" {
		opts.Isolated = true
	}
	dir, err := os.MkdirTemp(e.Dir, "sshd-")
	if err != nil {
		t.Fatal(err)
	}
	s := &SSHD{
		Host:        opts.ListenIP,
		User:        "root",
		Dir:         dir,
		Config:      filepath.Join(dir, "sshd_config"),
		LogFile:     filepath.Join(dir, "sshd.log"),
		HostKeyFile: filepath.Join(dir, "ssh_host_ed25519_key"),
		DockerHost:  opts.DockerHost,
		Isolated:    opts.Isolated,
	}
	if opts.Isolated {
		s.DeployRoot = opts.DeployRoot
		if s.DeployRoot == "" {
			s.DeployRoot = filepath.Join(dir, "deploy")
		}
		if err := os.MkdirAll(s.DeployRoot, 0o755); err != nil {
			t.Fatal(err)
		}
		// The mount point must exist in the shared filesystem.
		if err := os.MkdirAll("/var/deploy", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runCmd(t, "", nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shipit-e2e-host", "-f", s.HostKeyFile)
	pub, err := os.ReadFile(s.HostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	s.HostKeyPub = f[0] + " " + f[1]
	authFile := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authFile, []byte(e.ClientPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var lastErr string
	for attempt := 0; attempt < 5; attempt++ {
		port := opts.Port
		if port == 0 {
			port = freePortOn(t, opts.ListenIP)
		}
		s.Port = port
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
		s.HostKeyLine = fmt.Sprintf("[%s]:%d %s", s.Host, port, s.HostKeyPub)
		if err := os.WriteFile(s.Config, []byte(sshdConfig(s, authFile, opts)), 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.start(opts)
		if err == nil {
			break
		}
		lastErr = err.Error()
		if opts.Port != 0 || !strings.Contains(s.LogTail(), "Address already in use") {
			t.Fatalf("harness: sshd on %s: %v\n--- %s (tail) ---\n%s", s.Addr, err, s.LogFile, s.LogTail())
		}
		s.Port = 0
	}
	if s.Port == 0 {
		t.Fatalf("harness: sshd could not find a free port: %s\n--- %s (tail) ---\n%s", lastErr, s.LogFile, s.LogTail())
	}
	t.Cleanup(func() { s.stop() })
	if !opts.NoKnownHost {
		e.AddKnownHost(s)
	}
	return s
}

func sshdConfig(s *SSHD, authFile string, opts SSHDOpts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated by shipit e2e/harness\n")
	fmt.Fprintf(&b, "ListenAddress %s\n", s.Addr)
	fmt.Fprintf(&b, "Port %d\n", s.Port)
	fmt.Fprintf(&b, "HostKey %s\n", s.HostKeyFile)
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", authFile)
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	b.WriteString("StrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\n")
	b.WriteString("KbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 100\n")
	if opts.DockerHost != "" {
		fmt.Fprintf(&b, "SetEnv DOCKER_HOST=%s\n", opts.DockerHost)
	}
	if opts.ForwardOnly {
		b.WriteString("AllowTcpForwarding yes\nPermitTTY no\nX11Forwarding no\nForceCommand /bin/false\n")
	}
	if opts.ExtraConfig != "" {
		b.WriteString(opts.ExtraConfig)
		b.WriteString("\n")
	}
	return b.String()
}

func (s *SSHD) start(opts SSHDOpts) error {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	if opts.Isolated {
		// unshare without --fork execs in place: the sshd pid is the namespace's
		// first process, so `nsenter -t pid -m` enters this host's view.
		// A separate machine's root has its own home: the one a fresh
		// Debian gives it (base-files' .bashrc), not this machine's, whose
		// own start-up (pyenv init, ~0.1 s of CPU) bash runs for every SSH
		// session (SSH_SOURCE_BASHRC). MachineBashrc switches it back.
		script := `set -e; mount --bind "$1" /var/deploy; ` + mountFreshBashrc + `; exec "$2" -D -e -f "$3"`
		cmd = exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", s.DeployRoot, SSHDPath, s.Config)
	} else {
		cmd = exec.Command(SSHDPath, "-D", "-e", "-f", s.Config)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.cmd = cmd
	s.Pid = cmd.Process.Pid
	s.done = make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.waitMu.Lock()
		s.err = err
		s.waitMu.Unlock()
		close(s.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s.Exited() {
			s.waitMu.Lock()
			defer s.waitMu.Unlock()
			return fmt.Errorf("sshd exited early: %v", s.err)
		}
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			// Wait for the banner: the listener is sshd's, not a leftover.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4)
			_, rerr := c.Read(buf)
			c.Close()
			if rerr == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("sshd not accepting connections on %s after 15s", s.Addr)
}

func (s *SSHD) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.Exited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Docker runs the docker CLI against the engine host s uses (its own engine for
// isolated hosts, the default engine otherwise) and returns stdout; it fails the
// test on error. s may be nil for the default engine.
func (e *Env) Docker(t testing.TB, s *SSHD, args ...string) string {
	t.Helper()
	var env []string
	if s != nil && s.DockerHost != "" {
		env = []string{"DOCKER_HOST=" + s.DockerHost}
	}
	return runCmd(t, "", env, "docker", args...)
}

// mountFreshBashrc puts root's .bashrc of a fresh Debian (package
// base-files) over this machine's, in the mount namespace it runs in.
const mountFreshBashrc = "[ ! -e /root/.bashrc ] || mount --bind /usr/share/base-files/dot.bashrc /root/.bashrc"

// MachineBashrc gives isolated host s this machine's root .bashrc (on) or
// a fresh Debian's (off, its default): benchmarks measure both.
func (e *Env) MachineBashrc(t testing.TB, s *SSHD, on bool) {
	t.Helper()
	if !s.Isolated {
		t.Fatal("harness: MachineBashrc needs an isolated host")
	}
	cmd := "umount /root/.bashrc 2>/dev/null; true"
	if !on {
		cmd = "umount /root/.bashrc 2>/dev/null; " + mountFreshBashrc
	}
	e.HostRun(t, s, cmd)
}

// HostRun runs a shell command "on" host s, as its sessions would see the
// machine: for isolated hosts inside its mount namespace (its /var/deploy) with
// its DOCKER_HOST. It returns stdout and fails the test on a non-zero exit.
func (e *Env) HostRun(t testing.TB, s *SSHD, cmd string) string {
	t.Helper()
	var env []string
	if s.DockerHost != "" {
		env = []string{"DOCKER_HOST=" + s.DockerHost}
	}
	if s.Isolated {
		return runCmd(t, "", env, "nsenter", "-t", strconv.Itoa(s.Pid), "-m", "--", "/bin/sh", "-c", cmd)
	}
	return runCmd(t, "", env, "/bin/sh", "-c", cmd)
}

// GitRepo makes dir a git repository (branch main, local user.name/email) and
// commits files (path -> content, parent dirs created) in one commit. Called
// again on the same dir, it commits the new files on top.
func GitRepo(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_DATE=2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2025-01-01T00:00:00Z",
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		runCmd(t, dir, env, "git", "init", "-q", "-b", "main")
		runCmd(t, dir, env, "git", "config", "user.name", "shipit e2e")
		runCmd(t, dir, env, "git", "config", "user.email", "e2e@shipit.invalid")
		runCmd(t, dir, env, "git", "config", "commit.gpgsign", "false")
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// Binaries are committed executable (git keeps the bit), so that
		// an image FROM scratch can COPY them without a shell to chmod.
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "\x7fELF") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	runCmd(t, dir, env, "git", "add", "-A")
	runCmd(t, dir, env, "git", "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("e2e commit (%d files)", len(files)))
}

// runCmd runs name args in dir with extra env, returns stdout, fails the test
// with stderr on error.
func runCmd(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(dir, env, nil, name, args...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return out
}

func run(dir string, env []string, stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s",
			name, strings.Join(args, " "), err, tail(stdout.String(), 2000), tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// removeLeakedDirs removes /tmp/shipit-e2e-* dirs of test processes that died
// without cleaning up (killed by a timeout or by hand).
func removeLeakedDirs() {
	dirs, _ := filepath.Glob("/tmp/shipit-e2e-*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// shortTempDir is like t.TempDir but short (unix socket paths are limited to
// 108 bytes) and under /tmp.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Logf("harness: removing %s: %v", dir, err)
		}
	})
	return dir
}
