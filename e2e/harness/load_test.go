package harness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadCounts runs the load generator against an in-process server that
// fails every 10th fast request with a 502 and switches version halfway.
func TestLoadCounts(t *testing.T) {
	var n, conns atomic.Int64
	var version atomic.Value
	version.Store("1")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "app.test" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/slow" {
			if r.URL.Query().Get("ms") != "300" {
				http.Error(w, "bad ms", http.StatusBadRequest)
				return
			}
			time.Sleep(300 * time.Millisecond)
		} else if n.Add(1)%10 == 0 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "version %s\n", version.Load())
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	l := StartLoad(t, LoadOpts{URL: srv.URL, Host: "app.test", Clients: 2, SlowEvery: 200 * time.Millisecond, SlowMs: 300})
	time.Sleep(500 * time.Millisecond)
	mid := time.Now()
	version.Store("2")
	time.Sleep(500 * time.Millisecond)
	r := l.Stop()
	t.Log(r)

	fast := n.Load()
	if r.Sent != int(fast)+r.SlowStarted {
		t.Errorf("sent %d, want %d fast + %d slow", r.Sent, fast, r.SlowStarted)
	}
	if int(conns.Load()) != r.Sent {
		t.Errorf("%d connections for %d requests: keep-alive is on", conns.Load(), r.Sent)
	}
	if r.Failed != int(fast/10) || r.ByKind["502"] != r.Failed || len(r.Samples["502"]) == 0 ||
		!strings.Contains(r.Samples["502"][0], "502 bad gateway") {
		t.Errorf("failed %d %v %v, want %d 502s", r.Failed, r.ByKind, r.Samples, fast/10)
	}
	if r.SlowStarted < 4 || r.SlowCompleted != r.SlowStarted {
		t.Errorf("slow %d/%d", r.SlowCompleted, r.SlowStarted)
	}
	if r.Versions["1"] == 0 || r.Versions["2"] == 0 || r.Versions["1"]+r.Versions["2"] != r.Sent-r.Failed {
		t.Errorf("versions %v", r.Versions)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 || r.P99 > 250*time.Millisecond {
		t.Errorf("latencies p50 %v p99 %v max %v", r.P50, r.P99, r.Max)
	}
	before, after := r.Window(r.From, mid), r.Window(mid, r.To)
	// Slow requests started before mid may answer version 2.
	if before.Sent+after.Sent != r.Sent || before.Versions["2"] > before.SlowStarted || after.Versions["1"] > 2 {
		t.Errorf("windows: before %v\nafter %v", before, after)
	}

	// A refused connection is a failure of kind "refused".
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	l = StartLoad(t, LoadOpts{URL: url, Clients: 1, SlowEvery: -1})
	time.Sleep(100 * time.Millisecond)
	r = l.Stop()
	if r.Sent == 0 || r.Failed != r.Sent || r.ByKind["refused"] != r.Sent {
		t.Errorf("against a closed port: %v", r)
	}
}
