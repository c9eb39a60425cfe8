package sshpool

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError reports an unknown or changed host key.
type HostKeyError struct {
	Host        string // host as checked against known_hosts (HostName)
	Port        int
	Fingerprint string // SHA256:... of the key the server presented
	KeyType     string
	Changed     bool   // true: known_hosts has a different key for this host
	KnownAt     string // "file:line" of a conflicting entry when Changed
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host key for %s CHANGED: server presented %s %s, which does not match %s",
			e.hostPort(), e.KeyType, e.Fingerprint, e.KnownAt)
	}
	return fmt.Sprintf("host key for %s is unknown: server presented %s %s, not found in known_hosts",
		e.hostPort(), e.KeyType, e.Fingerprint)
}

func (e *HostKeyError) hostPort() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// Hint tells the user how to resolve the error.
func (e *HostKeyError) Hint() string {
	if e.Changed {
		return fmt.Sprintf("the host key CHANGED since it was recorded (%s): this is a possible MITM attack, "+
			"or the host was reinstalled; confirm the new fingerprint %s with the host's admin, "+
			"then remove the old entry with `ssh-keygen -R '%s'`",
			e.KnownAt, e.Fingerprint, knownhosts.Normalize(e.hostPort()))
	}
	return fmt.Sprintf("verify the fingerprint %s, then add it with `ssh-keyscan -p %d %s >> ~/.ssh/known_hosts`, "+
		"or rerun with --accept-new-host-keys", e.Fingerprint, e.Port, e.Host)
}

// probeKey is a key no known_hosts file contains; checking it yields a
// KeyError listing every key recorded for the host.
var probeKey = func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
}()

var fakeRemote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}

// hostKeyChecker builds the callback and algorithm list for one dial.
type hostKeyChecker struct {
	files     []string
	acceptNew bool
	appendMu  *sync.Mutex
}

// load reads the known_hosts files fresh on every dial so keys accepted by a
// concurrent dial (or by the user) are seen. Missing files are fine.
func (h *hostKeyChecker) load() (ssh.HostKeyCallback, error) {
	var existing []string
	for _, f := range h.files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return cb, nil
}

// algorithms returns the host key algorithms for the keys recorded for
// addr, so the server is asked for a key type the file actually lists.
func algorithmsFor(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(addr, fakeRemote, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

func (h *hostKeyChecker) callback(cb ssh.HostKeyCallback, host string, port int) ssh.HostKeyCallback {
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(addr, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		he := &HostKeyError{Host: host, Port: port, Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
		if len(ke.Want) > 0 {
			he.Changed = true
			he.KnownAt = fmt.Sprintf("%s:%d", ke.Want[0].Filename, ke.Want[0].Line)
			return he
		}
		if !h.acceptNew || len(h.files) == 0 {
			return he
		}
		if err := h.appendKey(addr, key); err != nil {
			return fmt.Errorf("accepting new host key %s: %w", he.Fingerprint, err)
		}
		return nil
	}
}

func (h *hostKeyChecker) appendKey(addr string, key ssh.PublicKey) error {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	file := h.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	// Re-check under the lock: a concurrent dial may have just added it.
	if cb, err := h.load(); err == nil && cb(addr, fakeRemote, key) == nil {
		return nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	prefix := ""
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if b, err := os.ReadFile(file); err == nil && !strings.HasSuffix(string(b), "\n") {
			prefix = "\n"
		}
	}
	line := prefix + knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
