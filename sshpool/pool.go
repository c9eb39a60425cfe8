// Package sshpool keeps one SSH connection per host (jump hosts included)
// on top of golang.org/x/crypto/ssh, plus the unpooled ones Separate dials
// (the deploy lock holder's); *Client is the connection deploys use
// (the orchestrator checks it satisfies internal/remote.Conn).
package sshpool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
)

// Config configures a Pool. Zero values get OpenSSH-like defaults.
type Config struct {
	KnownHostsFiles   []string      // default [~/.ssh/known_hosts]
	AcceptNewHostKeys bool          // unknown key -> append to KnownHostsFiles[0]; a changed key is always refused
	IdentityFiles     []string      // tried after agent, ssh_config IdentityFile and default keys
	SSHConfigPath     string        // default ~/.ssh/config; a missing file is fine
	KeepAlive         time.Duration // default 15s; 3 unanswered -> connection closed
	MaxSessions       int           // concurrent sessions per connection, default 8
	DialTimeout       time.Duration // default 15s, covers TCP connect and handshake
	// DefaultUser is the SSH user of a target that names none, when
	// ssh_config gives none for it either ("" = the current OS user, as
	// OpenSSH does). shipit sets "deploy", the original shipit's default.
	// Jump hosts without a user keep OpenSSH's default (ssh -J semantics).
	DefaultUser string
	// WarmFirst starts a pooled connection's warm shell (warm.go) and its
	// SFTP subsystem as soon as the connection is up, for commands that run
	// many on each host (deploy): their start-ups (each a login shell, for
	// a server whose sftp is not internal-sftp) then overlap whatever the
	// run does first (the lock holder's own connection and login shell),
	// and the first command waits for that shell instead of a session of
	// its own. Off, a single command (shipit exec) gets a plain session and
	// the warm shell starts with the second.
	WarmFirst bool
}

// Target names a host as the user wrote it.
type Target struct {
	Name  string // how messages name the host (default: Host)
	Host  string // ssh_config alias, hostname, IP, or "host:port"
	User  string // "" -> ssh_config User -> Config.DefaultUser -> current user
	Port  int    // 0 -> port in Host -> ssh_config Port -> 22
	Proxy string // "" -> ssh_config ProxyJump; else "user@host[:port],..." ("none" disables)
}

// Pool dials each distinct target once and shares the connection.
type Pool struct {
	cfg       Config
	home      string
	agentSock string
	sshConfig *ssh_config.Config
	configErr error
	appendMu  sync.Mutex
	known     knownHostsCache

	ctx    context.Context // cancelled by Close; bounds in-flight dials
	cancel context.CancelFunc

	mu         sync.Mutex
	closed     bool
	conns      map[string]*entry
	extra      map[*Client]struct{} // from Client.Separate
	handshakes map[string]int
	hsSem      map[string]chan struct{} // per server address
}

type entry struct {
	done   chan struct{}
	client *Client
	err    error
}

// New returns a Pool. ssh_config is read now (errors surface on Get);
// known_hosts is re-read on every dial.
func New(cfg Config) *Pool {
	home, _ := os.UserHomeDir()
	return newPool(cfg, home, os.Getenv("SSH_AUTH_SOCK"))
}

func newPool(cfg Config, home, agentSock string) *Pool {
	if cfg.KnownHostsFiles == nil {
		cfg.KnownHostsFiles = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	if cfg.SSHConfigPath == "" {
		cfg.SSHConfigPath = filepath.Join(home, ".ssh", "config")
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 8
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	p := &Pool{
		cfg:        cfg,
		home:       home,
		agentSock:  agentSock,
		conns:      map[string]*entry{},
		extra:      map[*Client]struct{}{},
		handshakes: map[string]int{},
		hsSem:      map[string]chan struct{}{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.sshConfig, p.configErr = loadSSHConfig(cfg.SSHConfigPath)
	return p
}

func loadSSHConfig(path string) (*ssh_config.Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ssh_config.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	defer f.Close()
	c, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return c, nil
}

// resolved is a target after ssh_config lookup.
type resolved struct {
	name       string // as written, for messages
	host       string // HostName
	port       int
	user       string
	identities []string
	proxy      []hop // jump chain, first hop dialled directly
}

type hop struct {
	user, host string
	port       int
}

func (r *resolved) addr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port)) }
func (r *resolved) id() string   { return r.user + "@" + r.addr() }

func (p *Pool) cfgGet(alias, key string) string {
	v, _ := p.sshConfig.Get(alias, key)
	return strings.TrimSpace(v)
}

// resolve applies ssh_config. For a jump hop (jumpHop) the hop
// never consults its own ProxyJump (avoids loops; chains are spelled out).
func (p *Pool) resolve(t Target, jumpHop bool) (*resolved, error) {
	if t.Host == "" {
		return nil, errors.New("empty host")
	}
	alias, portStr := splitHostPort(t.Host)
	r := &resolved{name: t.Host, host: alias, user: t.User, port: t.Port}
	if t.Name != "" {
		r.name = t.Name
	}
	if hn := p.cfgGet(alias, "HostName"); hn != "" {
		r.host = strings.ReplaceAll(hn, "%h", alias)
	}
	if r.port == 0 && portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("bad port in %q", t.Host)
		}
		r.port = n
	}
	if r.port == 0 {
		if v := p.cfgGet(alias, "Port"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("ssh config: bad Port %q for %s", v, alias)
			}
			r.port = n
		}
	}
	if r.port == 0 {
		r.port = 22
	}
	if r.user == "" {
		r.user = p.cfgGet(alias, "User")
	}
	if r.user == "" && !jumpHop {
		r.user = p.cfg.DefaultUser
	}
	if r.user == "" {
		r.user = currentUser()
	}
	ids, _ := p.sshConfig.GetAll(alias, "IdentityFile")
	for _, id := range ids {
		r.identities = append(r.identities, p.expand(strings.TrimSpace(id), alias, r))
	}
	proxy := t.Proxy
	if proxy == "" && !jumpHop {
		proxy = p.cfgGet(alias, "ProxyJump")
	}
	if proxy != "" && !strings.EqualFold(proxy, "none") {
		for _, s := range strings.Split(proxy, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			h := hop{}
			if i := strings.LastIndex(s, "@"); i >= 0 {
				h.user, s = s[:i], s[i+1:]
			}
			host, ps := splitHostPort(s)
			h.host = host
			if ps != "" {
				n, err := strconv.Atoi(ps)
				if err != nil {
					return nil, fmt.Errorf("bad proxy port in %q", s)
				}
				h.port = n
			}
			r.proxy = append(r.proxy, h)
		}
	}
	return r, nil
}

func (p *Pool) expand(path, alias string, r *resolved) string {
	if path == "~" {
		return p.home
	}
	if strings.HasPrefix(path, "~/") {
		path = filepath.Join(p.home, path[2:])
	}
	return strings.NewReplacer("%d", p.home, "%h", r.host, "%n", alias, "%r", r.user,
		"%p", strconv.Itoa(r.port), "%u", currentUser(), "%%", "%").Replace(path)
}

func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		if h, p, err := net.SplitHostPort(s); err == nil {
			return h, p
		}
	}
	return s, ""
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// Get returns the pooled client for t, dialling it (and its jump hosts) once.
// Concurrent Gets for the same target share one dial.
func (p *Pool) Get(ctx context.Context, t Target) (*Client, error) {
	if p.configErr != nil {
		return nil, p.configErr
	}
	r, err := p.resolve(t, false)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Host, err)
	}
	c, err := p.get(ctx, r)
	if err == nil && p.cfg.WarmFirst {
		c.prewarmOnce.Do(c.prewarm) // a target's, never a jump host's
	}
	return c, err
}

func poolKey(r *resolved) string {
	k := r.id()
	for i := len(r.proxy) - 1; i >= 0; i-- {
		h := r.proxy[i]
		k += " via " + h.user + "@" + net.JoinHostPort(h.host, strconv.Itoa(h.port))
	}
	return k
}

func (p *Pool) get(ctx context.Context, r *resolved) (*Client, error) {
	key := poolKey(r)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("ssh %s: pool closed", r.id())
	}
	e, ok := p.conns[key]
	if !ok {
		e = &entry{done: make(chan struct{})}
		p.conns[key] = e
		// The dial outlives a cancelled caller so other waiters still get
		// the connection; it is bounded by DialTimeout and Pool.Close.
		go p.dial(key, e, r)
	}
	p.mu.Unlock()
	select {
	case <-e.done:
		return e.client, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("ssh %s: %w", r.id(), ctx.Err())
	}
}

func (p *Pool) dial(key string, e *entry, r *resolved) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout*time.Duration(1+len(r.proxy)))
	defer cancel()
	c, err := p.connect(ctx, r)
	var discard *Client
	p.mu.Lock()
	switch {
	case err != nil:
		delete(p.conns, key) // let a later Get retry
		e.err = err
	case p.closed:
		discard = c
		e.err = fmt.Errorf("ssh %s: pool closed", r.id())
	case c.isClosed():
		// Died before it was pooled, so forget() could not drop it.
		delete(p.conns, key)
		e.err = c.errf("connection lost right after handshake")
	default:
		c.poolKey = key
		e.client = c
	}
	p.mu.Unlock()
	close(e.done)
	if discard != nil {
		discard.close(errors.New("pool closed"))
	}
}

// forget drops a dead client so the next Get redials.
func (p *Pool) forget(c *Client) {
	p.mu.Lock()
	if e, ok := p.conns[c.poolKey]; ok && e.client == c {
		delete(p.conns, c.poolKey)
	}
	delete(p.extra, c)
	p.mu.Unlock()
}

func (p *Pool) connect(ctx context.Context, r *resolved) (*Client, error) {
	wrap := func(err error) error { return fmt.Errorf("ssh %s: %w", r.id(), err) }
	var conn net.Conn
	if len(r.proxy) > 0 {
		last := r.proxy[len(r.proxy)-1]
		chain := make([]string, 0, len(r.proxy)-1)
		for _, h := range r.proxy[:len(r.proxy)-1] {
			chain = append(chain, hopString(h))
		}
		proxy := strings.Join(chain, ",")
		if proxy == "" {
			proxy = "none"
		}
		jr, err := p.resolve(Target{Host: hopHost(last), User: last.user, Port: last.port, Proxy: proxy}, true)
		if err != nil {
			return nil, wrap(fmt.Errorf("jump host %s: %w", last.host, err))
		}
		jc, err := p.get(ctx, jr)
		if err != nil {
			return nil, wrap(fmt.Errorf("via jump host: %w", err))
		}
		release, err := p.startHandshake(ctx, r.addr())
		if err != nil {
			return nil, wrap(err)
		}
		defer release()
		conn, err = dialVia(ctx, jc.ssh, r.addr())
		if err != nil {
			return nil, wrap(fmt.Errorf("via jump host %s: %w", jr.id(), err))
		}
	} else {
		release, err := p.startHandshake(ctx, r.addr())
		if err != nil {
			return nil, wrap(err)
		}
		defer release()
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", r.addr())
		if err != nil {
			return nil, wrap(err)
		}
	}

	hk := &hostKeyChecker{files: p.cfg.KnownHostsFiles, home: p.home, acceptNew: p.cfg.AcceptNewHostKeys, appendMu: &p.appendMu, cache: &p.known}
	kh, err := hk.load()
	if err != nil {
		conn.Close()
		return nil, wrap(err)
	}
	var defaults []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		defaults = append(defaults, filepath.Join(p.home, ".ssh", n))
	}
	auth := buildAuth(p.agentSock, r.identities, defaults, p.cfg.IdentityFiles)
	defer auth.closer()
	signers := auth.signers
	ccfg := &ssh.ClientConfig{
		User:              r.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return signers, nil })},
		HostKeyCallback:   hk.callback(kh, r.host, r.port),
		HostKeyAlgorithms: algorithmsFor(kh, r.addr()),
		Timeout:           p.cfg.DialTimeout,
	}

	// Jump-host channels ignore deadlines, so cancellation closes the conn.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, r.addr(), ccfg)
	cancelled := !stop()
	if err != nil || cancelled {
		conn.Close()
		if cancelled {
			err = ctx.Err()
		}
		var he *HostKeyError
		if errors.As(err, &he) {
			return nil, wrap(he)
		}
		if len(signers) == 0 && len(auth.notes) == 0 {
			auth.notes = append(auth.notes, "no keys available: no ssh-agent and no identity files found")
		}
		return nil, wrap(auth.wrap(err))
	}
	_ = conn.SetDeadline(time.Time{})

	p.mu.Lock()
	p.handshakes[r.id()]++
	p.mu.Unlock()

	c := newClient(p, r, ssh.NewClient(sc, chans, reqs))
	return c, nil
}

// maxHandshakesPerServer stays under OpenSSH's MaxStartups 10, beyond which
// it starts dropping new unauthenticated connections.
const maxHandshakesPerServer = 8

func (p *Pool) startHandshake(ctx context.Context, addr string) (func(), error) {
	p.mu.Lock()
	sem, ok := p.hsSem[addr]
	if !ok {
		sem = make(chan struct{}, maxHandshakesPerServer)
		p.hsSem[addr] = sem
	}
	p.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func hopString(h hop) string {
	s := hopHost(h)
	if h.user != "" {
		s = h.user + "@" + s
	}
	return s
}

func hopHost(h hop) string {
	if h.port != 0 {
		return net.JoinHostPort(h.host, strconv.Itoa(h.port))
	}
	if strings.Contains(h.host, ":") {
		return "[" + h.host + "]"
	}
	return h.host
}

// dialVia opens a direct-tcpip channel; x/crypto's DialContext honours ctx
// only until the channel is open.
func dialVia(ctx context.Context, jc *ssh.Client, addr string) (net.Conn, error) {
	return jc.DialContext(ctx, "tcp", addr)
}

// Handshakes returns the number of completed SSH handshakes per
// "user@host:port", jump hosts included.
func (p *Pool) Handshakes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.handshakes))
	for k, v := range p.handshakes {
		m[k] = v
	}
	return m
}

// Close closes every connection; in-flight dials are abandoned.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var clients []*Client
	for _, e := range p.conns {
		select {
		case <-e.done:
			if e.client != nil {
				clients = append(clients, e.client)
			}
		default:
		}
	}
	p.conns = map[string]*entry{}
	for c := range p.extra {
		clients = append(clients, c)
	}
	p.extra = nil
	p.mu.Unlock()
	p.cancel()
	var errs []error
	for _, c := range clients {
		if err := c.close(errors.New("pool closed")); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
