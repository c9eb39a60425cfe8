package sshpool

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const sshdPath = "/usr/sbin/sshd"

// testSSHD is a real OpenSSH server on 127.0.0.1 for one test.
type testSSHD struct {
	Port     int
	Addr     string          // 127.0.0.1:port
	HostKeys []ssh.PublicKey // ed25519 first, then ecdsa
	Dir      string
}

// testKey is a client key written to disk.
type testKey struct {
	Path   string
	Signer ssh.Signer
	Priv   crypto.PrivateKey
}

func genKey(t *testing.T, dir, name string, passphrase string) *testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, filepath.Join(dir, name), priv, passphrase)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{Path: filepath.Join(dir, name), Signer: s, Priv: priv}
}

func writeKey(t *testing.T, path string, priv crypto.PrivateKey, passphrase string) {
	t.Helper()
	var blk *pem.Block
	var err error
	if passphrase != "" {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	} else {
		blk, err = ssh.MarshalPrivateKey(priv, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD starts /usr/sbin/sshd accepting the given client keys. extra is
// appended to sshd_config. Missing sshd fails the test: these tests are the
// only coverage of the real protocol path.
func startSSHD(t *testing.T, authorized []ssh.PublicKey, extra string) *testSSHD {
	t.Helper()
	return startSSHDPrepared(t, authorized, extra, nil)
}

// startSSHDPrepared is startSSHD with prepare, when not nil, called once the
// host keys are written (s.Dir, s.HostKeys set); the lines it returns are
// appended to sshd_config (e.g. a HostCertificate it wrote).
func startSSHDPrepared(t *testing.T, authorized []ssh.PublicKey, extra string, prepare func(s *testSSHD) string) *testSSHD {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("OpenSSH server required for sshpool tests: %s: %v (apt-get install openssh-server)", sshdPath, err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("mkdir /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &testSSHD{Dir: dir}

	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var hostKeyLines string
	for i, k := range []crypto.PrivateKey{edPriv, ecPriv} {
		p := filepath.Join(dir, fmt.Sprintf("host_key_%d", i))
		writeKey(t, p, k, "")
		sg, _ := ssh.NewSignerFromKey(k)
		s.HostKeys = append(s.HostKeys, sg.PublicKey())
		hostKeyLines += "HostKey " + p + "\n"
	}
	var ak bytes.Buffer
	for _, k := range authorized {
		ak.Write(ssh.MarshalAuthorizedKey(k))
	}
	if prepare != nil {
		extra += "\n" + prepare(s)
	}
	akPath := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(akPath, ak.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	var cmd *exec.Cmd
	var stderr bytes.Buffer
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = freePort(t)
		s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
		cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
%sAuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
%s
`, s.Port, hostKeyLines, akPath, filepath.Join(dir, "sshd.pid"), extra)
		cfgPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		stderr.Reset()
		cmd = exec.Command(sshdPath, "-D", "-e", "-f", cfgPath)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if waitPort(s.Addr, exited) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return s
		}
		cmd.Process.Kill()
		<-exited
	}
	t.Fatalf("sshd did not start: %s", stderr.String())
	return nil
}

func waitPort(addr string, exited chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// knownHostsLine returns a known_hosts line for the server's key i.
func (s *testSSHD) knownHostsLine(i int, hashed bool) string {
	host := knownhosts.Normalize(s.Addr)
	if hashed {
		host = knownhosts.HashHostname(host)
	}
	return knownhosts.Line([]string{host}, s.HostKeys[i])
}

func writeTestFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }
