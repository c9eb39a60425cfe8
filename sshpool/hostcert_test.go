package sshpool

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// testCA is a certificate authority's key.
type testCA struct {
	ssh.Signer
	priv ed25519.PrivateKey
}

func newCA(t *testing.T) testCA {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{s, priv}
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// hostCert signs pub as a host certificate for principals, valid in
// [after, before).
func hostCert(t *testing.T, ca ssh.Signer, pub ssh.PublicKey, principals []string, after, before time.Time) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{
		Key:             pub,
		Serial:          1,
		CertType:        ssh.HostCert,
		KeyId:           "test-host",
		ValidPrincipals: principals,
		ValidAfter:      uint64(after.Unix()),
		ValidBefore:     uint64(before.Unix()),
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

// certEnv starts sshd serving a certificate for its ed25519 host key, made
// by sign (given the sshd's directory and host key; it returns the
// certificate file).
func certEnv(t *testing.T, sign func(dir string, hostKey ssh.PublicKey) string) *env {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key := genKey(t, home, "client_key", "")
	s := startSSHDPrepared(t, []ssh.PublicKey{key.Signer.PublicKey()}, "", func(s *testSSHD) string {
		return "HostCertificate " + sign(s.Dir, s.HostKeys[0])
	})
	return &env{t: t, home: home, key: key, sshd: s, known: filepath.Join(home, ".ssh", "known_hosts")}
}

// goCert signs with x/crypto and writes the certificate next to the host key.
func goCert(t *testing.T, ca ssh.Signer, principals []string, after, before time.Time) func(string, ssh.PublicKey) string {
	return func(dir string, pub ssh.PublicKey) string {
		p := filepath.Join(dir, "host_key_0-cert.pub")
		writeTestFile(t, p, string(ssh.MarshalAuthorizedKey(hostCert(t, ca, pub, principals, after, before))))
		return p
	}
}

func caLine(pattern string, ca ssh.PublicKey) string {
	return "@cert-authority " + pattern + " " + authorized(ca)
}

func (e *env) hostPattern() string { return knownhosts.Normalize(e.sshd.Addr) }

func (e *env) mustRun(t *testing.T, p *Pool) {
	t.Helper()
	c, err := p.Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, c, "echo reached", ""); code != 0 || out != "reached\n" {
		t.Fatalf("run: code=%d out=%q", code, out)
	}
}

func (e *env) hostKeyErr(t *testing.T, p *Pool) *HostKeyError {
	t.Helper()
	_, err := p.Get(context.Background(), e.target())
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("want *HostKeyError, got %v", err)
	}
	if he.Hint() == "" {
		t.Fatalf("no hint: %v", err)
	}
	return he
}

// A server presenting a host certificate (OpenSSH HostCertificate) is
// trusted through a @cert-authority line for its name, as OpenSSH does.
func TestHostCertificateTrustedByCA(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("ssh-keygen required (openssh-client)")
	}
	ca := newCA(t)
	caDir := t.TempDir()
	caKey := filepath.Join(caDir, "ca")
	writeKey(t, caKey, ca.priv, "")
	// Signed by OpenSSH's own tool, as an admin would.
	e := certEnv(t, func(dir string, _ ssh.PublicKey) string {
		out, err := exec.Command("ssh-keygen", "-q", "-s", caKey, "-I", "test-host", "-h", "-n", "127.0.0.1",
			filepath.Join(dir, "host_key_0.pub")).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
		}
		return filepath.Join(dir, "host_key_0-cert.pub")
	})

	t.Run("CA line only", func(t *testing.T) {
		known := lines(caLine(e.hostPattern(), ca.PublicKey()))
		writeTestFile(t, e.known, known)
		e.mustRun(t, e.pool(func(c *Config) { c.AcceptNewHostKeys = true }))
		if b, _ := readString(e.known); b != known {
			t.Fatalf("known_hosts changed: %q", b)
		}
	})
	t.Run("pattern", func(t *testing.T) {
		writeTestFile(t, e.known, lines(caLine(fmt.Sprintf("[127.0.0.*]:%d", e.sshd.Port), ca.PublicKey())))
		e.mustRun(t, e.pool(nil))
	})
	t.Run("hashed", func(t *testing.T) {
		writeTestFile(t, e.known, lines(caLine(knownhosts.HashHostname(e.hostPattern()), ca.PublicKey())))
		e.mustRun(t, e.pool(nil))
	})
	t.Run("CA and plain key lines", func(t *testing.T) {
		for i := range e.sshd.HostKeys {
			writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(i, false), caLine(e.hostPattern(), ca.PublicKey())))
			e.mustRun(t, e.pool(nil))
			writeTestFile(t, e.known, lines(caLine(e.hostPattern(), ca.PublicKey()), e.sshd.knownHostsLine(i, true)))
			e.mustRun(t, e.pool(nil))
		}
	})
	t.Run("CA for another host", func(t *testing.T) {
		writeTestFile(t, e.known, lines(caLine("*.example.com", ca.PublicKey())))
		he := e.hostKeyErr(t, e.pool(nil))
		if he.Changed || he.Revoked || !strings.Contains(he.Error(), "unknown") {
			t.Fatalf("want unknown: %v", he)
		}
	})
	t.Run("revoked CA", func(t *testing.T) {
		writeTestFile(t, e.known, lines(caLine(e.hostPattern(), ca.PublicKey()), "@revoked * "+authorized(ca.PublicKey())))
		he := e.hostKeyErr(t, e.pool(func(c *Config) { c.AcceptNewHostKeys = true }))
		if !he.Revoked || !strings.Contains(he.Error(), "REVOKED") || !strings.Contains(he.Error(), ":2") {
			t.Fatalf("want revoked CA: %v", he)
		}
	})
	t.Run("revoked host key", func(t *testing.T) {
		writeTestFile(t, e.known, lines(caLine(e.hostPattern(), ca.PublicKey()),
			"@revoked * "+authorized(e.sshd.HostKeys[0]), e.sshd.knownHostsLine(0, false)))
		he := e.hostKeyErr(t, e.pool(nil))
		if !he.Revoked || !strings.Contains(he.Error(), "REVOKED") {
			t.Fatalf("want revoked key: %v", he)
		}
	})
}

// A certificate that does not hold for this connection is refused with
// the reason, even under --accept-new-host-keys, and nothing is recorded.
func TestHostCertificateRefused(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	for _, tc := range []struct {
		name      string
		signer    ssh.Signer // nil: ca
		principal []string
		after     time.Time
		before    time.Time
		msg, hint string
	}{
		{name: "wrong name", principal: []string{"db1.example.com", "10.0.0.7"}, after: now.Add(-time.Hour), before: now.Add(time.Hour),
			msg:  `host certificate for 127.0.0.1:%d refused: it is not valid for "127.0.0.1" (it names db1.example.com, 10.0.0.7)`,
			hint: "-n 127.0.0.1"},
		{name: "expired", principal: []string{"127.0.0.1"}, after: now.Add(-2 * time.Hour), before: now.Add(-time.Hour),
			msg:  `host certificate for 127.0.0.1:%d refused: it expired at ` + now.Add(-time.Hour).UTC().Format(time.RFC3339),
			hint: "renew"},
		{name: "not yet valid", principal: []string{"127.0.0.1"}, after: now.Add(time.Hour), before: now.Add(2 * time.Hour),
			msg:  `host certificate for 127.0.0.1:%d refused: it is not valid before ` + now.Add(time.Hour).UTC().Format(time.RFC3339),
			hint: "clock"},
		{name: "untrusted CA", signer: newCA(t), principal: []string{"127.0.0.1"}, after: now.Add(-time.Hour), before: now.Add(time.Hour),
			msg:  `host certificate for 127.0.0.1:%d refused: it is signed by CA SHA256:`,
			hint: "@cert-authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer := tc.signer
			if signer == nil {
				signer = ca
			}
			e := certEnv(t, goCert(t, signer, tc.principal, tc.after, tc.before))
			known := lines(caLine(e.hostPattern(), ca.PublicKey()))
			writeTestFile(t, e.known, known)
			he := e.hostKeyErr(t, e.pool(func(c *Config) { c.AcceptNewHostKeys = true }))
			if he.Changed || he.Revoked || he.CertProblem == "" {
				t.Fatalf("want a certificate problem: %+v", he)
			}
			if want := fmt.Sprintf(tc.msg, e.sshd.Port); !strings.HasPrefix(he.Error(), want) {
				t.Fatalf("error:\n got %s\nwant %s...", he.Error(), want)
			}
			if !strings.Contains(he.Hint(), tc.hint) {
				t.Fatalf("hint: %s", he.Hint())
			}
			if b, _ := readString(e.known); b != known {
				t.Fatalf("known_hosts changed: %q", b)
			}
			// OpenSSH falls back to the certified key: a plain line for it
			// still lets the host in.
			writeTestFile(t, e.known, lines(caLine(e.hostPattern(), ca.PublicKey()), e.sshd.knownHostsLine(0, false)))
			e.mustRun(t, e.pool(nil))
		})
	}
}

// An unknown host whose sshd has a certificate no CA line vouches for is an
// unknown host, not an obscure handshake error; accepting it records its
// plain key.
func TestHostCertificateUnknownHost(t *testing.T) {
	ca := newCA(t)
	e := certEnv(t, goCert(t, ca, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	writeTestFile(t, e.known, "")
	he := e.hostKeyErr(t, e.pool(nil))
	if he.Changed || he.Revoked || he.CertProblem != "" || !strings.Contains(he.Hint(), "--accept-new-host-keys") {
		t.Fatalf("want unknown: %+v", he)
	}
	if want := ssh.FingerprintSHA256(e.sshd.HostKeys[0]); he.Fingerprint != want {
		t.Fatalf("fingerprint %s, want the certified key's %s", he.Fingerprint, want)
	}
	e.mustRun(t, e.pool(func(c *Config) { c.AcceptNewHostKeys = true }))
	if b, _ := readString(e.known); b != lines(e.sshd.knownHostsLine(0, false)) {
		t.Fatalf("known_hosts = %q, want the plain host key", b)
	}
	e.mustRun(t, e.pool(nil))
}

// Patterns, hashed names and ports of @cert-authority lines, checked
// without a server; and the algorithms asked for.
func TestHostCertificatePatterns(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	hostKey := hostSigner.PublicKey()
	now := time.Now()
	dir := t.TempDir()
	file := writeTestFile(t, filepath.Join(dir, "known_hosts"), lines(
		"# comment",
		caLine("*.example.com,!bad.example.com", ca.PublicKey()),
		caLine(knownhosts.HashHostname("[hashed.example.org]:2222"), ca.PublicKey()),
		knownhosts.Line([]string{"plain.example.com"}, hostKey),
	))
	hk := &hostKeyChecker{files: []string{file}, appendMu: &sync.Mutex{}}
	kh, err := hk.load()
	if err != nil {
		t.Fatal(err)
	}
	check := func(addr string, key ssh.PublicKey) *HostKeyError {
		host, _, _ := net.SplitHostPort(addr)
		err := hk.callback(kh, host, 22)(addr, fakeRemote, key)
		if err == nil {
			return nil
		}
		var he *HostKeyError
		if !errors.As(err, &he) {
			t.Fatalf("%s: want *HostKeyError, got %v", addr, err)
		}
		return he
	}
	cert := func(s ssh.Signer, names ...string) *ssh.Certificate {
		return hostCert(t, s, hostKey, names, now.Add(-time.Minute), now.Add(time.Hour))
	}
	for _, addr := range []string{"db1.example.com:22", "hashed.example.org:2222"} {
		host, _, _ := net.SplitHostPort(addr)
		if he := check(addr, cert(ca, "x", host)); he != nil {
			t.Errorf("%s: %v", addr, he)
		}
		if he := check(addr, cert(ca, "other"+host)); he == nil || !strings.Contains(he.CertProblem, "not valid for") {
			t.Errorf("%s, wrong name: %v", addr, he)
		}
		if he := check(addr, cert(other, host)); he == nil || !strings.Contains(he.CertProblem, "signed by CA") {
			t.Errorf("%s, other CA: %v", addr, he)
		}
		// A plain key where a CA is expected: unknown (the server has no certificate).
		if he := check(addr, hostKey); he == nil || he.Changed || !strings.Contains(he.Hint(), "HostCertificate") {
			t.Errorf("%s, plain key: %v", addr, he)
		}
		algos := algorithmsFor(kh, addr)
		if len(algos) == 0 || algos[0] != ssh.CertAlgoED25519v01 || !slices.Contains(algos, ssh.KeyAlgoED25519) {
			t.Errorf("%s: algorithms %v", addr, algos)
		}
	}
	for _, addr := range []string{"bad.example.com:22", "db1.example.com:2222", "example.com:22", "hashed.example.org:22"} {
		if he := check(addr, cert(ca, strings.Split(addr, ":")[0])); he == nil || he.Changed || he.CertProblem != "" {
			t.Errorf("%s: want unknown, got %v", addr, he)
		}
	}
	// Plain key line and CA: certificates first, then the plain key's type.
	if he := check("plain.example.com:22", hostKey); he != nil {
		t.Errorf("plain key: %v", he)
	}
	if he := check("plain.example.com:22", cert(ca, "plain.example.com")); he != nil {
		t.Errorf("certificate: %v", he)
	}
	if algos := algorithmsFor(kh, "plain.example.com:22"); algos[0] != ssh.CertAlgoED25519v01 || algos[len(algos)-1] != ssh.KeyAlgoED25519 {
		t.Errorf("plain + CA algorithms %v", algos)
	}
	if algos := algorithmsFor(kh, "unknown.example.net:22"); algos != nil {
		t.Errorf("unknown host algorithms %v", algos)
	}
}

// Two dials to one host racing under --accept-new-host-keys, each shown a
// different key: the first records its key, the second is refused as
// changed, even from another process (separate mutexes: only the flock on
// the file serialises them).
func TestAcceptNewRace(t *testing.T) {
	key := func() ssh.PublicKey {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, _ := ssh.NewSignerFromKey(priv)
		return s.PublicKey()
	}
	const addr = "203.0.113.9:2222"
	for i := 0; i < 20; i++ {
		file := filepath.Join(t.TempDir(), "known_hosts")
		k1, k2 := key(), key()
		var cbs []ssh.HostKeyCallback
		for range 2 {
			hk := &hostKeyChecker{files: []string{file}, acceptNew: true, appendMu: &sync.Mutex{}}
			kh, err := hk.load() // both see the host as unknown
			if err != nil {
				t.Fatal(err)
			}
			cbs = append(cbs, hk.callback(kh, "203.0.113.9", 2222))
		}
		errs := make([]error, 2)
		keys := []ssh.PublicKey{k1, k2}
		if i == 0 {
			// Deterministic order once: the second sees the first's key.
			for j := range 2 {
				errs[j] = cbs[j](addr, fakeRemote, keys[j])
			}
		} else {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[j] = cbs[j](addr, fakeRemote, keys[j])
				}()
			}
			close(start)
			wg.Wait()
		}
		won := -1
		for j, err := range errs {
			var he *HostKeyError
			switch {
			case err == nil && won < 0:
				won = j
			case errors.As(err, &he) && he.Changed && strings.HasPrefix(he.KnownAt, file+":1"):
			default:
				t.Fatalf("round %d: dial %d: %v (other: %v)", i, j, err, errs[1-j])
			}
		}
		if won < 0 {
			t.Fatalf("round %d: both refused: %v", i, errs)
		}
		want := lines(knownhosts.Line([]string{knownhosts.Normalize(addr)}, keys[won]))
		if b, _ := readString(file); b != want {
			t.Fatalf("round %d: known_hosts = %q, want %q", i, b, want)
		}
		if st, err := os.Stat(file + ".lock"); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("lock file: %v, %v", st, err)
		}
	}
}

// The re-check happens under an flock of the known_hosts file's lock file,
// which another process may hold; against a real sshd.
func TestAcceptNewRecheckUnderFileLock(t *testing.T) {
	e := newEnv(t, "")
	// A proxy that holds the connection until released, so the dial has
	// read known_hosts before the handshake.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted, release := make(chan struct{}), make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		close(accepted)
		<-release
		s, err := net.Dial("tcp", e.sshd.Addr)
		if err != nil {
			c.Close()
			return
		}
		go func() {
			defer s.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				s.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				c.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
	}()
	addr := l.Addr().String()
	writeTestFile(t, e.known, "")
	p := e.pool(func(c *Config) { c.AcceptNewHostKeys = true })
	done := make(chan error, 1)
	go func() {
		_, err := p.Get(context.Background(), Target{Host: addr})
		done <- err
	}()
	<-accepted
	time.Sleep(300 * time.Millisecond) // the dial reads known_hosts now

	// Another process holds the lock and records a different key.
	lock, err := os.OpenFile(e.known+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case err := <-done:
		t.Fatalf("dial finished while another process held the known_hosts lock: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	other := newCA(t).PublicKey()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, other)
	writeTestFile(t, e.known, lines(line))
	unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	err = <-done
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Changed || he.KnownAt != e.known+":1" {
		t.Fatalf("want changed *HostKeyError, got %v", err)
	}
	if b, _ := readString(e.known); b != lines(line) {
		t.Fatalf("known_hosts = %q", b)
	}
}
