package sshpool

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// HostKeyError reports a host key or host certificate that known_hosts
// does not let in: unknown, changed, revoked, or a certificate that does
// not hold for this host.
type HostKeyError struct {
	Host        string // host as checked against known_hosts (HostName)
	Port        int
	Fingerprint string // SHA256:... of the key the server presented (of the certified key for a certificate)
	KeyType     string // as presented, e.g. ssh-ed25519-cert-v01@openssh.com for a certificate
	Changed     bool   // true: known_hosts has a different key for this host
	KnownAt     string // "file:line" of a conflicting entry when Changed, of the @revoked entry when Revoked
	Revoked     bool   // the key, or the CA that signed its certificate, is marked @revoked
	RevokedCA   bool   // Revoked: it is the certificate's CA that is revoked
	CA          string // SHA256:... of the CA that signed the presented certificate
	CertProblem string // why a host certificate was refused ("it expired at ...")

	// File is the known_hosts file a new key belongs in (the first one
	// configured), as the hint shows it: ~/.ssh/known_hosts, or the
	// --known-hosts FILE given.
	File string

	certFix string // how to fix CertProblem
	caAt    string // "file:line" of a @cert-authority entry for this host, when the server presented no certificate
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked && e.RevokedCA:
		return fmt.Sprintf("host certificate for %s is signed by a REVOKED CA %s (marked @revoked at %s): server presented %s %s",
			e.hostPort(), e.CA, e.KnownAt, e.KeyType, e.Fingerprint)
	case e.Revoked:
		return fmt.Sprintf("host key for %s is REVOKED: server presented %s %s, marked @revoked at %s",
			e.hostPort(), e.KeyType, e.Fingerprint, e.KnownAt)
	case e.CertProblem != "":
		return fmt.Sprintf("host certificate for %s refused: %s (server presented %s for key %s, signed by CA %s)",
			e.hostPort(), e.CertProblem, e.KeyType, e.Fingerprint, e.CA)
	case e.Changed:
		return fmt.Sprintf("host key for %s CHANGED: server presented %s %s, which does not match %s",
			e.hostPort(), e.KeyType, e.Fingerprint, e.KnownAt)
	}
	return fmt.Sprintf("host key for %s is unknown: server presented %s %s, not found in known_hosts",
		e.hostPort(), e.KeyType, e.Fingerprint)
}

func (e *HostKeyError) hostPort() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// unknown reports whether the key is merely not recorded (the only case
// --accept-new-host-keys may record).
func (e *HostKeyError) unknown() bool { return !e.Changed && !e.Revoked && e.CertProblem == "" }

// Hint tells the user how to resolve the error.
func (e *HostKeyError) Hint() string {
	switch {
	case e.Revoked:
		what := "key"
		if e.RevokedCA {
			what = "CA"
		}
		return fmt.Sprintf("%s revokes this %s on purpose: do not connect; ask the host's admin for its current host key "+
			"or a certificate from a CA you trust, and delete the @revoked line only if it was added by mistake",
			e.KnownAt, what)
	case e.CertProblem != "":
		return e.certFix
	case e.Changed:
		return fmt.Sprintf("the host key CHANGED since it was recorded (%s): this is a possible MITM attack, "+
			"or the host was reinstalled; confirm the new fingerprint %s with the host's admin, "+
			"then remove the old entry with `ssh-keygen -R '%s'`",
			e.KnownAt, e.Fingerprint, knownhosts.Normalize(e.hostPort()))
	}
	file := e.File
	if file == "" {
		file = "~/.ssh/known_hosts"
	}
	h := fmt.Sprintf("verify the fingerprint %s, then add it with `ssh-keyscan -p %d %s >> %s`, "+
		"or rerun with --accept-new-host-keys", e.Fingerprint, e.Port, e.Host, file)
	if e.caAt != "" {
		h = fmt.Sprintf("known_hosts trusts a CA for this host (@cert-authority, %s) but the server presented no certificate: "+
			"give its sshd a HostCertificate signed by that CA; or %s", e.caAt, h)
	}
	return h
}

// probeKey is a key no known_hosts file contains; checking it yields a
// KeyError listing every key recorded for the host. Its bytes are a hash
// nobody holds the private key of: generating a key at init cost every
// command about a millisecond of CPU.
var probeKey = func() ssh.PublicKey {
	sum := sha256.Sum256([]byte("shipit known_hosts probe key"))
	k, err := ssh.NewPublicKey(ed25519.PublicKey(sum[:]))
	if err != nil {
		panic(err)
	}
	return k
}()

var fakeRemote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}

// hostKeyChecker builds the callback and algorithm list for one dial.
type hostKeyChecker struct {
	files     []string
	home      string // for showing files under it as ~/...
	acceptNew bool
	appendMu  *sync.Mutex
	cache     *knownHostsCache // nil: parse on every load
}

// knownHosts is the known_hosts files as read for one dial. x/crypto's
// knownhosts does the matching (patterns, hashes, ports) and the
// revocation list; it does not say which of its entries are
// @cert-authority lines, so markers records that by file and line.
type knownHosts struct {
	cb      ssh.HostKeyCallback
	markers map[string]map[int]string // file -> line -> "@cert-authority" or "@revoked"
}

// knownHostsCache keeps the last parse of a pool's known_hosts files with
// the bytes it was made of: parsing every key of the files again for each
// of many hosts was most of a fan-out's client CPU beyond the handshakes.
// A change to any file (a key accepted by a concurrent dial, or by the
// user) misses and parses afresh.
type knownHostsCache struct {
	mu    sync.Mutex
	files []knownHostsFile
	kh    *knownHosts
}

// knownHostsFile is one file as read: missing, or its contents.
type knownHostsFile struct {
	exists bool
	data   []byte
}

func sameFiles(a, b []knownHostsFile) bool {
	return slices.EqualFunc(a, b, func(x, y knownHostsFile) bool {
		return x.exists == y.exists && bytes.Equal(x.data, y.data)
	})
}

// load reads the known_hosts files fresh on every dial so keys accepted by a
// concurrent dial (or by the user) are seen; they are parsed again only
// when their contents changed. Missing files are fine.
func (h *hostKeyChecker) load() (*knownHosts, error) {
	read := make([]knownHostsFile, len(h.files))
	for i, f := range h.files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		read[i] = knownHostsFile{exists: true, data: data}
	}
	if h.cache == nil {
		return h.parse(read)
	}
	h.cache.mu.Lock()
	defer h.cache.mu.Unlock()
	if h.cache.kh != nil && sameFiles(h.cache.files, read) {
		return h.cache.kh, nil
	}
	kh, err := h.parse(read)
	if err != nil {
		return nil, err
	}
	h.cache.files, h.cache.kh = read, kh
	return kh, nil
}

// parse builds the callback of the files as read (x/crypto's knownhosts
// reads them again by name: a file changed in between is parsed as it is
// now, and the next load, comparing to what was read here, parses again).
func (h *hostKeyChecker) parse(read []knownHostsFile) (*knownHosts, error) {
	kh := &knownHosts{markers: map[string]map[int]string{}}
	var existing []string
	for i, f := range h.files {
		if !read[i].exists {
			continue
		}
		existing = append(existing, f)
		kh.markers[f] = markerLines(read[i].data)
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	kh.cb = cb
	return kh, nil
}

// markerLines numbers lines as knownhosts does (every line counts).
func markerLines(data []byte) map[int]string {
	m := map[int]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) > 0 && l[0] == '@' {
			m[n] = string(bytes.Fields(l)[0])
		}
	}
	return m
}

// entries returns the plain keys and the CA keys recorded for addr.
func (k *knownHosts) entries(addr string) (plain, cas []knownhosts.KnownKey) {
	var ke *knownhosts.KeyError
	if !errors.As(k.cb(addr, fakeRemote, probeKey), &ke) {
		return nil, nil
	}
	for _, w := range ke.Want {
		if k.markers[w.Filename][w.Line] == "@cert-authority" {
			cas = append(cas, w)
		} else {
			plain = append(plain, w)
		}
	}
	return plain, cas
}

// revoked returns the @revoked entry for the plain key, if any.
func (k *knownHosts) revoked(addr string, key ssh.PublicKey) *knownhosts.KnownKey {
	var re *knownhosts.RevokedError
	if errors.As(k.cb(addr, fakeRemote, key), &re) {
		return &re.Revoked
	}
	return nil
}

func where(k knownhosts.KnownKey) string { return fmt.Sprintf("%s:%d", k.Filename, k.Line) }

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

func hasKey(list []knownhosts.KnownKey, key ssh.PublicKey) bool {
	return slices.ContainsFunc(list, func(k knownhosts.KnownKey) bool { return sameKey(k.Key, key) })
}

// verify checks the key the server at addr presented, as OpenSSH does:
// revoked keys and CAs are refused; a host certificate is trusted when a
// @cert-authority line for the host names its CA and it holds for the
// host now; otherwise (and when a certificate fails) the plain key must be
// recorded for the host. nil means trusted.
func (k *knownHosts) verify(addr, host string, port int, key ssh.PublicKey) *HostKeyError {
	raw := key
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		raw = cert.Key
	}
	he := &HostKeyError{Host: host, Port: port, Fingerprint: ssh.FingerprintSHA256(raw), KeyType: key.Type()}
	if r := k.revoked(addr, raw); r != nil {
		he.Revoked, he.KnownAt = true, where(*r)
		return he
	}
	plain, cas := k.entries(addr)
	if isCert {
		he.CA = ssh.FingerprintSHA256(cert.SignatureKey)
		if r := k.revoked(addr, cert.SignatureKey); r != nil {
			he.Revoked, he.RevokedCA, he.KnownAt = true, true, where(*r)
			return he
		}
		name, _, err := net.SplitHostPort(addr)
		if err != nil {
			name = addr
		}
		problem, fix := checkHostCert(cert, name, cas)
		if problem == "" {
			return nil
		}
		// OpenSSH retries a refused certificate as its plain key.
		if !hasKey(plain, raw) && len(cas) > 0 {
			he.CertProblem, he.certFix = problem, fix
			return he
		}
	}
	if hasKey(plain, raw) {
		return nil
	}
	if len(plain) > 0 {
		he.Changed, he.KnownAt = true, where(plain[0])
		return he
	}
	if len(cas) > 0 {
		he.caAt = where(cas[0])
	}
	return he
}

// checkHostCert says why cert does not let host in ("" when it does), and
// how to fix that.
func checkHostCert(cert *ssh.Certificate, host string, cas []knownhosts.KnownKey) (problem, fix string) {
	if cert.CertType != ssh.HostCert {
		return "it is not a host certificate", "the server's HostCertificate must be signed with `ssh-keygen -h`"
	}
	var ca *knownhosts.KnownKey
	for i := range cas {
		if sameKey(cas[i].Key, cert.SignatureKey) {
			ca = &cas[i]
			break
		}
	}
	if ca == nil {
		if len(cas) == 0 {
			return "no @cert-authority line in known_hosts is for this host",
				"add `@cert-authority " + knownhosts.Normalize(host) + " <CA public key>` to known_hosts, or record the host key itself"
		}
		return fmt.Sprintf("it is signed by CA %s, which no @cert-authority line for this host names (%s does)",
				ssh.FingerprintSHA256(cert.SignatureKey), where(cas[0])),
			"have the host's admin sign its key with the CA your known_hosts trusts, or add its CA with a @cert-authority line once you have verified it"
	}
	signAgain := fmt.Sprintf("have the host's admin sign its key again with the CA of %s: "+
		"`ssh-keygen -s CA_KEY -I ID -h -n %s -V -5m:+52w /etc/ssh/ssh_host_ed25519_key.pub`", where(*ca), host)
	if !slices.Contains(cert.ValidPrincipals, host) {
		names := "no host"
		if len(cert.ValidPrincipals) > 0 {
			names = strings.Join(cert.ValidPrincipals, ", ")
		}
		return fmt.Sprintf("it is not valid for %q (it names %s)", host, names),
			"connect to the host by a name the certificate lists, or " + signAgain
	}
	now := time.Now()
	if after := int64(cert.ValidAfter); after < 0 || now.Unix() < after {
		return fmt.Sprintf("it is not valid before %s", time.Unix(after, 0).UTC().Format(time.RFC3339)),
			"check this machine's clock and the host's; or " + signAgain
	}
	if before := int64(cert.ValidBefore); cert.ValidBefore != ssh.CertTimeInfinity && (before < 0 || now.Unix() >= before) {
		return fmt.Sprintf("it expired at %s", time.Unix(before, 0).UTC().Format(time.RFC3339)),
			"have the host's admin renew its certificate: " + strings.TrimPrefix(signAgain, "have the host's admin ")
	}
	// Signature and critical options (none is allowed for host
	// certificates), as x/crypto checks them.
	if err := (&ssh.CertChecker{}).CheckCert(host, cert); err != nil {
		return strings.TrimPrefix(err.Error(), "ssh: "), signAgain
	}
	return "", ""
}

// Host key algorithms to ask for: certificates first when a CA is trusted
// for the host (then plain keys, so a server without a certificate is
// reported as unknown rather than failing negotiation).
var (
	certAlgos = []string{
		ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
		ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
	}
	plainAlgos = []string{
		ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
)

// algorithmsFor returns the host key algorithms for the entries recorded
// for addr, so the server is asked for a key type the file actually lists
// (nil: x/crypto's defaults, for an unknown host).
func algorithmsFor(kh *knownHosts, addr string) []string {
	plain, cas := kh.entries(addr)
	if len(plain) == 0 && len(cas) == 0 {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, s := range a {
			if !slices.Contains(algos, s) {
				algos = append(algos, s)
			}
		}
	}
	if len(cas) > 0 {
		add(certAlgos...)
	}
	for _, k := range plain {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	if len(plain) == 0 {
		add(plainAlgos...)
	}
	return algos
}

func (h *hostKeyChecker) callback(kh *knownHosts, host string, port int) ssh.HostKeyCallback {
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		he := kh.verify(addr, host, port, key)
		if he == nil {
			return nil
		}
		he.File = h.displayFile()
		if !he.unknown() || !h.acceptNew || len(h.files) == 0 {
			return he
		}
		he2, err := h.appendKey(addr, host, port, key)
		if err != nil {
			return fmt.Errorf("accepting new host key %s: %w", he.Fingerprint, err)
		}
		if he2 != nil {
			he2.File = h.displayFile()
			return he2
		}
		return nil
	}
}

// displayFile is the first known_hosts file (where new keys are
// recorded) for a hint to paste in a shell: under home as ~/..., else
// quoted when it needs to be.
func (h *hostKeyChecker) displayFile() string {
	if len(h.files) == 0 {
		return ""
	}
	f := h.files[0]
	if h.home != "" {
		if rel, err := filepath.Rel(h.home, f); err == nil && filepath.IsLocal(rel) {
			return "~/" + shellWord(filepath.ToSlash(rel))
		}
	}
	return shellWord(f)
}

// shellWord quotes s for a POSIX shell when it is not a plain word
// (sshpool knows nothing of internal/shell).
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+=:@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// appendKey records key for addr in the first known_hosts file. The
// check-and-append runs under the pool's mutex and an flock of a lock file
// next to known_hosts (other shipit processes), and checks again under
// them: a key another dial recorded meanwhile for the host makes this one
// a changed key (*HostKeyError), never a second entry.
func (h *hostKeyChecker) appendKey(addr, host string, port int, key ssh.PublicKey) (*HostKeyError, error) {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	file := h.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFile(file + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	kh, err := h.load()
	if err != nil {
		return nil, err
	}
	if he := kh.verify(addr, host, port, key); he == nil {
		return nil, nil // a concurrent dial recorded this very key
	} else if !he.unknown() {
		return he, nil
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key // as OpenSSH: the plain key, not a certificate that expires
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	return nil, f.Close()
}

// lockFile takes an exclusive flock of path (created 0600), waiting for
// another process that holds it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
