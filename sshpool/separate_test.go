package sshpool

import (
	"context"
	"testing"
)

// Separate dials a second connection to the same host, outside the pool:
// the pool keeps handing out the first; Close and Pool.Close end it.
func TestSeparateConnection(t *testing.T) {
	e := newEnv(t, "")
	writeTestFile(t, e.known, lines(e.sshd.knownHostsLine(0, true)))
	p := e.pool(nil)
	c, err := p.Get(context.Background(), e.target())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Separate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s == c || s.ssh == c.ssh {
		t.Fatal("Separate returned the pooled connection")
	}
	if code, out, _ := run(t, s, "echo separate", ""); code != 0 || out != "separate\n" {
		t.Fatalf("run on the separate connection: %d %q", code, out)
	}
	if hs := p.Handshakes()[currentUser()+"@"+e.sshd.Addr]; hs != 2 {
		t.Fatalf("handshakes = %d, want 2", hs)
	}
	if again, _ := p.Get(context.Background(), e.target()); again != c {
		t.Fatal("the pool hands out the separate connection")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.isClosed() || c.isClosed() {
		t.Fatal("Close closed the wrong connection")
	}
	s2, err := c.Separate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if !s2.isClosed() {
		t.Fatal("Pool.Close left a separate connection open")
	}
}
