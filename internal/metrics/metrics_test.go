package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const sample = `# HELP traefik_service_requests_total How many HTTP requests processed on a service, partitioned by status code, protocol, and method.
# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="shop-production@docker"} %d
traefik_service_requests_total{code="500",method="GET",protocol="http",service="shop-production@docker"} %d
traefik_service_requests_total{code="200",method="GET",protocol="http",service="other-production@docker"} 7
# HELP traefik_service_request_duration_seconds How long it took to process the request on a service, partitioned by status code, protocol, and method.
# TYPE traefik_service_request_duration_seconds histogram
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="shop-production@docker",le="0.01"} %d
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="shop-production@docker",le="0.1"} %d
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="shop-production@docker",le="1"} %d
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="shop-production@docker",le="+Inf"} %d
traefik_service_request_duration_seconds_sum{code="200",method="GET",protocol="http",service="shop-production@docker"} 1
traefik_service_request_duration_seconds_count{code="200",method="GET",protocol="http",service="shop-production@docker"} %d
`

func snap(t *testing.T, at time.Time, ok, bad, b1, b2, b3 int) Snapshot {
	t.Helper()
	s, err := Parse(fmt.Sprintf(sample, ok, bad, b1, b2, b3, ok, ok), at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWindowAndGates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := snap(t, t0, 1000, 0, 1000, 1000, 1000)                            // all fast so far
	b := snap(t, t0.Add(2*time.Minute), 1700, 300, 1000+0, 1000+700, 1700) // 700 more ok, between 10ms and 100ms; 300 errors
	if s := a.Services["other-production"]; s.Requests != 7 {
		t.Errorf("other service = %+v", s)
	}
	w := Between(a, b, "shop-production")
	if w.Requests != 1000 || w.Errors != 300 || w.Span != 2*time.Minute {
		t.Fatalf("window = %+v", w)
	}
	if w.P95 < 90*time.Millisecond || w.P95 > 100*time.Millisecond {
		t.Errorf("p95 = %v, want within the 10ms-100ms bucket, near its top", w.P95)
	}
	base := Total(a, "shop-production")
	if base.P95 <= 0 || base.P95 > 10*time.Millisecond {
		t.Errorf("baseline p95 = %v", base.P95)
	}
	g := Gate{MaxErrorRate: 0.01, MinRequests: 50}
	v := g.Judge(w, base, false)
	if v.Pass || v.Reason != "5xx 30.0% > 1.0% over 2m0s (1,000 requests)" {
		t.Errorf("verdict = %+v", v)
	}
	g.MaxErrorRate, g.MaxP95Ratio = 0.5, 2
	if v := g.Judge(w, base, true); v.Pass || !strings.HasPrefix(v.Reason, "p95 ") {
		t.Errorf("latency verdict = %+v", v)
	}
	g.MaxP95Ratio = 0
	if v := g.Judge(w, base, true); !v.Pass || v.Reason != "" {
		t.Errorf("no latency gate: %+v", v)
	}
	// Too little traffic: a warning, or a failure when traffic is required.
	small := Window{Requests: 3, Span: time.Minute, P95: -1}
	if v := g.Judge(small, base, false); !v.Pass || v.Enough {
		t.Errorf("mid-window, little traffic: %+v", v)
	}
	if v := g.Judge(small, base, true); !v.Pass || !strings.HasPrefix(v.Reason, "not enough traffic: 3 requests") {
		t.Errorf("little traffic: %+v", v)
	}
	g.RequireTraffic = true
	if v := g.Judge(small, base, true); v.Pass {
		t.Errorf("little traffic, required: %+v", v)
	}
	// Traefik restarted: counters went down, the window counts from zero.
	r := snap(t, t0.Add(3*time.Minute), 10, 0, 10, 10, 10)
	if w := Between(b, r, "shop-production"); w.Requests != 10 {
		t.Errorf("after a restart: %+v", w)
	}
}

func TestCompareCanaryWithPeers(t *testing.T) {
	g := Gate{MaxErrorRate: 0.01, MaxP95Ratio: 2, MinRequests: 10}
	peers := Window{Requests: 1000, Errors: 10, P95: 20 * time.Millisecond, Span: time.Minute}
	if v := g.Compare(Window{Requests: 100, Errors: 1, P95: 30 * time.Millisecond, Span: time.Minute}, peers); !v.Pass {
		t.Errorf("a canary like its peers failed: %+v", v)
	}
	if v := g.Compare(Window{Requests: 100, Errors: 5, P95: 20 * time.Millisecond, Span: time.Minute}, peers); v.Pass ||
		v.Reason != "5xx 5.0% on the canary vs 1.0% on the other hosts over 1m0s (100 requests)" {
		t.Errorf("more errors than the peers: %+v", v)
	}
	if v := g.Compare(Window{Requests: 100, P95: 50 * time.Millisecond, Span: time.Minute}, peers); v.Pass ||
		v.Reason != "p95 50ms on the canary = 2.5x the other hosts' 20ms > 2.0x" {
		t.Errorf("slower than the peers: %+v", v)
	}
	if v := g.Compare(Window{Requests: 5, Errors: 5}, peers); !v.Pass {
		t.Errorf("too little traffic to compare: %+v", v)
	}
}
