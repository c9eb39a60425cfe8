package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP forwarder in front of an sshd: it counts the bytes each way
// (what a deploy puts on the wire), can throttle the client's upload, and can
// cut every connection at once, like a network that drops.
type Proxy struct {
	Addr string // 127.0.0.1:port, with the sshd's host key in Env.KnownHosts
	Host string
	Port int

	up, down atomic.Int64
	rate     atomic.Int64 // upload bytes per second; 0 = unlimited

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy forwards a new loopback port to s and registers s's host key
// for that address in e.KnownHosts. It is stopped in t.Cleanup.
func (e *Env) StartProxy(t testing.TB, s *SSHD) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, conns: map[net.Conn]struct{}{}}
	e.addKnownLine(fmt.Sprintf("[%s]:%d %s", p.Host, p.Port, s.HostKeyPub))
	p.wg.Add(1)
	go p.accept(s.Addr)
	t.Cleanup(p.Close)
	return p
}

func (e *Env) addKnownLine(line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := os.ReadFile(e.KnownHosts)
	if err := os.WriteFile(e.KnownHosts, append(b, []byte(line+"\n")...), 0o600); err != nil {
		panic(err)
	}
}

// Up is the bytes the client sent through the proxy so far.
func (p *Proxy) Up() int64 { return p.up.Load() }

// Down is the bytes the server sent back so far.
func (p *Proxy) Down() int64 { return p.down.Load() }

// SetRate limits the client's upload to bytesPerSec (0: unlimited).
func (p *Proxy) SetRate(bytesPerSec int64) { p.rate.Store(bytesPerSec) }

// Cut closes every open connection, both ways, at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops accepting and cuts every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept(target string) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", target, 10*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, true)
		p.track(s, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.copy(s, c, &p.up, true)
			s.Close()
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.copy(c, s, &p.down, false)
			c.Close()
			s.Close()
		}()
	}
}

// copy forwards src to dst, counting, and paced when throttled.
func (p *Proxy) copy(dst, src net.Conn, n *atomic.Int64, throttled bool) {
	defer p.track(src, false)
	buf := make([]byte, 32<<10)
	var next time.Time // when the paced stream may send again
	for {
		chunk := buf
		rate := int64(0)
		if throttled {
			rate = p.rate.Load()
		}
		if rate > 0 {
			chunk = buf[:min(len(buf), int(max(rate/50, 1024)))]
		}
		k, err := src.Read(chunk)
		if k > 0 {
			if _, werr := dst.Write(chunk[:k]); werr != nil {
				return
			}
			n.Add(int64(k))
			if rate > 0 {
				// No credit for idle time: a stream that waited does not
				// burst afterwards.
				now := time.Now()
				if next.Before(now) {
					next = now
				}
				next = next.Add(time.Duration(float64(k) / float64(rate) * float64(time.Second)))
				time.Sleep(time.Until(next))
			}
		}
		if err != nil {
			return
		}
	}
}

// PortString is the proxy's port as a string.
func (p *Proxy) PortString() string { return strconv.Itoa(p.Port) }
