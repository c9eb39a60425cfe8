package sshpool

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The known_hosts files are parsed once while they stay the same, and
// again as soon as one changes (a key accepted meanwhile is seen), is
// created or is removed.
func TestKnownHostsParsedOnceUntilChanged(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "known_hosts"), filepath.Join(dir, "known_hosts2")
	a, b := newHostKey(t), newHostKey(t)
	writeTestFile(t, first, knownhosts.Line([]string{"a.example.com"}, a)+"\n")
	hk := &hostKeyChecker{files: []string{first, second}, appendMu: &sync.Mutex{}, cache: &knownHostsCache{}}
	known := func(kh *knownHosts, host string, key ssh.PublicKey) bool {
		return kh.verify(host+":22", host, 22, key) == nil
	}
	load := func() *knownHosts {
		t.Helper()
		kh, err := hk.load()
		if err != nil {
			t.Fatal(err)
		}
		return kh
	}

	kh1 := load()
	if !known(kh1, "a.example.com", a) {
		t.Fatal("key of a.example.com not known")
	}
	if kh2 := load(); kh2 != kh1 {
		t.Error("unchanged files parsed again")
	}

	f, err := os.OpenFile(first, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(knownhosts.Line([]string{"b.example.com"}, b) + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	kh3 := load()
	if kh3 == kh1 || !known(kh3, "b.example.com", b) {
		t.Fatal("a key appended to known_hosts is not seen")
	}

	writeTestFile(t, second, "")
	kh4 := load()
	if kh4 == kh3 {
		t.Error("a created (empty) known_hosts file did not invalidate the cache")
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if kh5 := load(); kh5 == kh4 || known(kh5, "a.example.com", a) {
		t.Error("a removed known_hosts file is still trusted")
	}
}
