package sshpool

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

type env struct {
	t     *testing.T
	home  string
	key   *testKey
	sshd  *testSSHD
	known string
}

// newEnv starts sshd and writes a client key. known_hosts is left empty.
func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key := genKey(t, home, "client_key", "")
	s := startSSHD(t, []ssh.PublicKey{key.Signer.PublicKey()}, extra)
	return &env{t: t, home: home, key: key, sshd: s, known: filepath.Join(home, ".ssh", "known_hosts")}
}

func (e *env) pool(mod func(*Config)) *Pool {
	cfg := Config{
		KnownHostsFiles: []string{e.known},
		IdentityFiles:   []string{e.key.Path},
		SSHConfigPath:   filepath.Join(e.home, ".ssh", "config"),
		DialTimeout:     10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	p := newPool(cfg, e.home, "")
	e.t.Cleanup(func() { p.Close() })
	return p
}

func (e *env) target() Target { return Target{Host: e.sshd.Addr} }

func run(t *testing.T, c *Client, cmd string, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	code, err := c.Run(context.Background(), cmd, in, &out, &errb)
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return code, out.String(), errb.String()
}

func TestConnectAndOps(t *testing.T) {
	e := newEnv(t, "")
	// Only the ed25519 key is recorded while x/crypto prefers ECDSA: without
	// HostKeyAlgorithms from known_hosts this would be a false mismatch.
	for _, tc := range []struct {
		name   string
		hashed bool
	}{{"plain", false}, {"hashed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			writeTestFile(t, e.known, lines("# comment", e.sshd.knownHostsLine(0, tc.hashed)))
			p := e.pool(nil)
			ctx := context.Background()
			c, err := p.Get(ctx, e.target())
			if err != nil {
				t.Fatal(err)
			}
			if c.Name() != e.sshd.Addr || c.Addr() != currentUser()+"@"+e.sshd.Addr {
				t.Fatalf("Name=%q Addr=%q", c.Name(), c.Addr())
			}
			if code, out, _ := run(t, c, "echo hello", ""); code != 0 || out != "hello\n" {
				t.Fatalf("echo: code=%d out=%q", code, out)
			}
			if code, _, stderr := run(t, c, "echo oops >&2; exit 7", ""); code != 7 || stderr != "oops\n" {
				t.Fatalf("exit 7: code=%d stderr=%q", code, stderr)
			}
			if code, out, _ := run(t, c, "tr a-z A-Z", "piped input"); code != 0 || out != "PIPED INPUT" {
				t.Fatalf("stdin: code=%d out=%q", code, out)
			}

			dir := t.TempDir() // same machine: the remote is local
			target := filepath.Join(dir, "sub.txt")
			if ok, err := c.Exists(ctx, target); err != nil || ok {
				t.Fatalf("Exists before = %v, %v", ok, err)
			}
			os.WriteFile(target, []byte("old"), 0o644)
			big := bytes.Repeat([]byte("0123456789abcdef"), 100000) // >1 MB: concurrent writes
			if err := c.WriteFile(ctx, target, bytes.NewReader(big), int64(len(big)), 0o640); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(target)
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("content mismatch: %d bytes, %v", len(got), err)
			}
			st, _ := os.Stat(target)
			if st.Mode().Perm() != 0o640 {
				t.Fatalf("mode = %v", st.Mode())
			}
			// Unknown size path.
			if err := c.WriteFile(ctx, target, strings.NewReader("small"), -1, 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := c.ReadFile(ctx, target); err != nil || string(b) != "small" {
				t.Fatalf("ReadFile = %q, %v", b, err)
			}
			// Short input must fail and leave the old file and no temp behind.
			err = c.WriteFile(ctx, target, strings.NewReader("abc"), 10, 0o600)
			if err == nil || !strings.Contains(err.Error(), "short input") {
				t.Fatalf("short write err = %v", err)
			}
			if b, _ := os.ReadFile(target); string(b) != "small" {
				t.Fatalf("target clobbered: %q", b)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("temp files left: %v", ents)
			}
			if ok, err := c.Exists(ctx, target); err != nil || !ok {
				t.Fatalf("Exists after = %v, %v", ok, err)
			}
			os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling"))
			if ok, err := c.Exists(ctx, filepath.Join(dir, "dangling")); err != nil || !ok {
				t.Fatalf("Exists(dangling) = %v, %v", ok, err)
			}
			if _, err := c.ReadFile(ctx, filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("ReadFile(missing) err = %v", err)
			}
			if s1, _ := c.SFTP(); s1 == nil {
				t.Fatal("no sftp")
			} else if s2, _ := c.SFTP(); s1 != s2 {
				t.Fatal("SFTP not shared")
			}
		})
	}
}

func TestUnknownHostKey(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, "")
	_, err := e.pool(nil).Get(context.Background(), e.target())
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("want *HostKeyError, got %v", err)
	}
	if he.Changed || !strings.HasPrefix(he.Fingerprint, "SHA256:") || he.Host != "127.0.0.1" {
		t.Fatalf("bad error: %+v", he)
	}
	wantHint := fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> ~/.ssh/known_hosts", e.sshd.Port)
	if !strings.Contains(he.Hint(), wantHint) || !strings.Contains(he.Hint(), "--accept-new-host-keys") {
		t.Fatalf("hint: %s", he.Hint())
	}
	if !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("message: %v", err)
	}

	// A known_hosts file given outside home is the one the hint appends to.
	other := filepath.Join(t.TempDir(), "my known_hosts")
	writeTestFile(t, other, "")
	_, err = e.pool(func(c *Config) { c.KnownHostsFiles = []string{other} }).Get(context.Background(), e.target())
	if !errors.As(err, &he) {
		t.Fatalf("want *HostKeyError, got %v", err)
	}
	wantHint = fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> '%s'`", e.sshd.Port, other)
	if !strings.Contains(he.Hint(), wantHint) {
		t.Fatalf("hint %q does not contain %q", he.Hint(), wantHint)
	}

	// Opt-in: the key is appended and the connection succeeds.
	e.known = filepath.Join(e.home, ".ssh", "new", "known_hosts") // directory is created
	p := e.pool(func(c *Config) { c.AcceptNewHostKeys = true })
	c, err := p.Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, c, "true", ""); code != 0 {
		t.Fatal("run failed")
	}
	b, _ := os.ReadFile(e.known)
	if !strings.Contains(string(b), fmt.Sprintf("[127.0.0.1]:%d ", e.sshd.Port)) {
		t.Fatalf("known_hosts not appended: %q", b)
	}
	// A fresh pool without opt-in now trusts the recorded key.
	if _, err := e.pool(nil).Get(context.Background(), e.target()); err != nil {
		t.Fatal(err)
	}
}

func TestChangedHostKey(t *testing.T) {
	e := newEnv(t, "")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	line := strings.Replace(e.sshd.knownHostsLine(0, false),
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(e.sshd.HostKeys[0]))),
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))), 1)
	writeTestFile(t, e.known, lines(line))
	_, err := e.pool(func(c *Config) { c.AcceptNewHostKeys = true }).Get(context.Background(), e.target())
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Changed {
		t.Fatalf("want changed *HostKeyError, got %v", err)
	}
	want := fmt.Sprintf("ssh-keygen -R '[127.0.0.1]:%d'", e.sshd.Port)
	if !strings.Contains(he.Hint(), want) || !strings.Contains(he.Hint(), "MITM") || !strings.Contains(err.Error(), "CHANGED") {
		t.Fatalf("hint/err: %s / %v", he.Hint(), err)
	}
	if b, _ := readString(e.known); b != lines(line) {
		t.Fatalf("known_hosts modified: %q", b)
	}
}

func readString(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func TestOneHandshakeManySessions(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, true)))
	p := e.pool(func(c *Config) { c.MaxSessions = 4 })
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := p.Get(context.Background(), e.target())
			if err != nil {
				errs <- err
				return
			}
			var out bytes.Buffer
			code, err := c.Run(context.Background(), fmt.Sprintf("echo %d", i), nil, &out, nil)
			if err != nil || code != 0 || out.String() != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Errorf("run %d: code=%d out=%q err=%v", i, code, out.String(), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hs := p.Handshakes()
	if len(hs) != 1 || hs[currentUser()+"@"+e.sshd.Addr] != 1 {
		t.Fatalf("handshakes = %v", hs)
	}
}

func TestProxyJump(t *testing.T) {
	e := newEnv(t, "")
	jump := startSSHD(t, []ssh.PublicKey{e.key.Signer.PublicKey()},
		"PermitTTY no\nForceCommand /bin/false\nAllowTcpForwarding yes\n")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false), jump.knownHostsLine(1, true)))
	u := currentUser()

	check := func(t *testing.T, p *Pool, tgt Target) {
		c, err := p.Get(context.Background(), tgt)
		if err != nil {
			t.Fatal(err)
		}
		if code, out, _ := run(t, c, "echo via", ""); code != 0 || out != "via\n" {
			t.Fatalf("code=%d out=%q", code, out)
		}
		hs := p.Handshakes()
		if len(hs) != 2 || hs[u+"@"+e.sshd.Addr] != 1 || hs[u+"@"+jump.Addr] != 1 {
			t.Fatalf("handshakes = %v", hs)
		}
	}
	t.Run("explicit", func(t *testing.T) {
		p := e.pool(nil)
		check(t, p, Target{Host: e.sshd.Addr, Proxy: u + "@" + jump.Addr})
		// The jump host only forwards: a command there fails.
		jc, err := p.Get(context.Background(), Target{Host: jump.Addr, Proxy: "none"})
		if err != nil {
			t.Fatal(err)
		}
		if code, _, _ := run(t, jc, "echo hi", ""); code == 0 {
			t.Fatal("jump host ran a command")
		}
		if n := p.Handshakes()[u+"@"+jump.Addr]; n != 1 {
			t.Fatalf("jump connection not pooled: %d handshakes", n)
		}
	})
	t.Run("ssh_config", func(t *testing.T) {
		writeTestFile(t, filepath.Join(e.home, ".ssh", "config"), fmt.Sprintf(
			"Host app\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump bastion\n\nHost bastion\n  HostName 127.0.0.1\n  Port %d\n",
			e.sshd.Port, jump.Port))
		check(t, e.pool(nil), Target{Host: "app"})
	})
}

func TestSSHConfigAlias(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	cfgPath := writeTestFile(t, filepath.Join(e.home, "custom_config"), fmt.Sprintf(
		"Host other\n  User nobody\n\nHost myalias\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n\nHost *\n  User nosuchuser\n",
		e.sshd.Port, currentUser(), "~/client_key"))
	p := e.pool(func(c *Config) {
		c.SSHConfigPath = cfgPath
		c.IdentityFiles = nil // the key must come from IdentityFile
	})
	c, err := p.Get(context.Background(), Target{Host: "myalias"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "myalias" || c.Addr() != currentUser()+"@"+e.sshd.Addr {
		t.Fatalf("Name=%q Addr=%q", c.Name(), c.Addr())
	}
	if code, out, _ := run(t, c, "echo ok", ""); code != 0 || out != "ok\n" {
		t.Fatalf("code=%d out=%q", code, out)
	}
	// Explicit fields override ssh_config.
	r, err := p.resolve(Target{Host: "myalias:2222", User: "bob"}, false)
	if err != nil || r.id() != "bob@127.0.0.1:2222" {
		t.Fatalf("resolve = %+v, %v", r, err)
	}
	r, _ = p.resolve(Target{Host: "plain.example"}, false)
	if r.id() != "nosuchuser@plain.example:22" {
		t.Fatalf("Host * fallback: %s", r.id())
	}
}

// The user of a target that names none: ssh_config's User for the host,
// else Config.DefaultUser ("deploy" in shipit, as in the original), else
// the current user; jump hosts never take DefaultUser (ssh -J semantics).
func TestDefaultUser(t *testing.T) {
	home := t.TempDir()
	cfgPath := writeTestFile(t, filepath.Join(home, "config"), "Host withuser\n  User alice\n\nHost bastion\n  HostName 10.0.0.9\n")
	mk := func(def string) *Pool {
		p := newPool(Config{KnownHostsFiles: []string{filepath.Join(home, "kh")}, SSHConfigPath: cfgPath, DefaultUser: def}, home, "")
		t.Cleanup(func() { p.Close() })
		return p
	}
	for _, tc := range []struct {
		def    string
		target Target
		want   string
	}{
		{"deploy", Target{Host: "withuser"}, "alice@withuser:22"},
		{"deploy", Target{Host: "plain.example"}, "deploy@plain.example:22"},
		{"deploy", Target{Host: "plain.example", User: "root"}, "root@plain.example:22"},
		{"", Target{Host: "plain.example"}, currentUser() + "@plain.example:22"},
	} {
		r, err := mk(tc.def).resolve(tc.target, false)
		if err != nil || r.id() != tc.want {
			t.Errorf("DefaultUser %q, %+v: %s, %v; want %s", tc.def, tc.target, r.id(), err, tc.want)
		}
	}
	r, err := mk("deploy").resolve(Target{Host: "app.example", Proxy: "bastion,ops@jump2"}, false)
	if err != nil || r.user != "deploy" || len(r.proxy) != 2 || r.proxy[0].user != "" || r.proxy[1].user != "ops" {
		t.Fatalf("resolve with proxy = %+v, %v", r, err)
	}
	hop, err := mk("deploy").resolve(Target{Host: "bastion"}, true)
	if err != nil || hop.id() != currentUser()+"@10.0.0.9:22" {
		t.Fatalf("jump hop without a user = %s, %v; want the current user (ssh -J)", hop.id(), err)
	}
}

func TestRunCancel(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	c, err := e.pool(nil).Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx, "sleep 30", nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// The connection stays usable.
	if code, _, _ := run(t, c, "true", ""); code != 0 {
		t.Fatal("connection broken after cancel")
	}
}

// An agent full of other keys would exhaust MaxAuthTries; the agent key
// matching ssh_config IdentityFile (passphrase-protected on disk) goes first.
func TestAgentPrefersIdentityFile(t *testing.T) {
	e := newEnv(t, "MaxAuthTries 2\n")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	enc := filepath.Join(e.home, "enc_key")
	writeKey(t, enc, e.key.Priv, "secret")
	os.Remove(enc + ".pub") // public part must come from the key file itself

	kr := agent.NewKeyring()
	for i := 0; i < 5; i++ {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		kr.Add(agent.AddedKey{PrivateKey: k})
	}
	kr.Add(agent.AddedKey{PrivateKey: e.key.Priv})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	cfgPath := writeTestFile(t, filepath.Join(e.home, "cfg"), fmt.Sprintf("Host app\n  HostName 127.0.0.1\n  Port %d\n  IdentityFile %s\n", e.sshd.Port, enc))
	mk := func(sock string) *Pool {
		p := newPool(Config{KnownHostsFiles: []string{e.known}, SSHConfigPath: cfgPath}, e.home, sock)
		t.Cleanup(func() { p.Close() })
		return p
	}
	c, err := mk(sock).Get(context.Background(), Target{Host: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, c, "true", ""); code != 0 {
		t.Fatal("run failed")
	}

	// Without the agent the encrypted key cannot be used: say which file.
	_, err = mk("").Get(context.Background(), Target{Host: "app"})
	if err == nil || !strings.Contains(err.Error(), enc) || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("err = %v", err)
	}
}

func TestGetCancelAndDialError(t *testing.T) {
	home := t.TempDir()
	port := freePort(t) // nothing listens
	p := newPool(Config{KnownHostsFiles: []string{filepath.Join(home, "kh")}, SSHConfigPath: filepath.Join(home, "none")}, home, "")
	defer p.Close()
	_, err := p.Get(context.Background(), Target{Host: fmt.Sprintf("127.0.0.1:%d", port), User: "u"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("ssh u@127.0.0.1:%d", port)) {
		t.Fatalf("err = %v", err)
	}
	if len(p.Handshakes()) != 0 {
		t.Fatal("handshake counted")
	}
}

// frozenProxy forwards TCP to addr until freeze(), then silently stops
// moving bytes, like a dead network path.
func frozenProxy(t *testing.T, addr string) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frozen := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { close(done); l.Close() })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-frozen:
				<-done
				return
			default:
			}
			if n > 0 {
				dst.Write(buf[:n])
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { <-done; c.Close(); s.Close() }()
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return l.Addr().String(), func() { once.Do(func() { close(frozen) }) }
}

func TestKeepAliveDetectsDeadConnection(t *testing.T) {
	e := newEnv(t, "")
	addr, freeze := frozenProxy(t, e.sshd.Addr)
	_, port, _ := net.SplitHostPort(addr)
	writeTestFile(t, e.known, lines(strings.Replace(e.sshd.knownHostsLine(0, false),
		fmt.Sprintf(":%d", e.sshd.Port), ":"+port, 1)))
	p := e.pool(func(c *Config) { c.KeepAlive = 100 * time.Millisecond })
	c, err := p.Get(context.Background(), Target{Host: addr})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond) // answered keepalives keep it alive
	if code, _, _ := run(t, c, "true", ""); code != 0 {
		t.Fatal("run failed")
	}
	freeze()
	start := time.Now()
	_, err = c.Run(context.Background(), "sleep 30", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "keepalive") || !strings.Contains(err.Error(), c.Addr()) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("dead connection noticed after %v", d)
	}
	// The dead client left the pool.
	p.mu.Lock()
	n := len(p.conns)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("dead client still pooled")
	}
}

func TestWriteFileCancelAndClose(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, false)))
	p := e.pool(nil)
	c, err := p.Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	pr, pw := io.Pipe()
	go pw.Write([]byte("partial")) // then the stream stalls
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.WriteFile(ctx, target, pr, -1, 0o644)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	pw.Close() // unblocks the abandoned copy, which must clean up
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %v", ents)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(context.Background(), "true", nil, nil, nil); err == nil {
		t.Fatal("Run after Close succeeded")
	}
	if _, err := p.Get(context.Background(), e.target()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Get after Close: %v", err)
	}
}
