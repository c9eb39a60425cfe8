// Package metrics reads what Traefik measured of a routed service (its
// Prometheus metrics, served by `shipit setup` on the same internal,
// unpublished entrypoint as its API) and judges a window of them against
// gates: the 5xx share, the p95 latency against a baseline, a minimum of
// traffic. It is what makes a deploy check itself after the switch.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/traefik"
)

// ErrNoMetrics is a Traefik that serves no metrics where shipit's setup
// puts them (one the original shipit or the user runs).
var ErrNoMetrics = errors.New("Traefik serves no metrics on this host (run `shipit setup` to turn them on)")

// Service is what Traefik counted for one service since it started.
type Service struct {
	Requests float64  // all answers
	Errors   float64  // 5xx answers
	Buckets  []Bucket // latency histogram, cumulative, sorted by Le
}

// Bucket is a cumulative histogram bucket: Count requests took <= Le seconds.
type Bucket struct {
	Le    float64
	Count float64
}

// Snapshot is one reading of Traefik's counters.
type Snapshot struct {
	At       time.Time
	Services map[string]Service // by service name, without the @provider suffix
}

// Scrape reads the counters of the host's Traefik.
func Scrape(ctx context.Context, c remote.Conn) (Snapshot, error) {
	out, err := traefik.Internal(ctx, c, "/metrics")
	if err != nil {
		var ce *remote.CommandError
		if errors.As(err, &ce) {
			return Snapshot{}, ErrNoMetrics
		}
		return Snapshot{}, err
	}
	return Parse(out, time.Now())
}

// Parse reads Prometheus text: traefik_service_requests_total and
// traefik_service_request_duration_seconds, summed over codes, methods
// and protocols.
func Parse(text string, at time.Time) (Snapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading Traefik's metrics: %w", err)
	}
	s := Snapshot{At: at, Services: map[string]Service{}}
	if f := fams["traefik_service_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			name := serviceOf(m)
			svc := s.Services[name]
			v := m.GetCounter().GetValue()
			svc.Requests += v
			if strings.HasPrefix(label(m, "code"), "5") {
				svc.Errors += v
			}
			s.Services[name] = svc
		}
	}
	if f := fams["traefik_service_request_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			name := serviceOf(m)
			svc := s.Services[name]
			svc.Buckets = addBuckets(svc.Buckets, m.GetHistogram().GetBucket())
			s.Services[name] = svc
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func serviceOf(m *dto.Metric) string {
	name, _, _ := strings.Cut(label(m, "service"), "@")
	return name
}

func addBuckets(into []Bucket, bs []*dto.Bucket) []Bucket {
	for _, b := range bs {
		le := b.GetUpperBound()
		i := sort.Search(len(into), func(i int) bool { return into[i].Le >= le })
		if i < len(into) && into[i].Le == le {
			into[i].Count += float64(b.GetCumulativeCount())
			continue
		}
		into = append(into, Bucket{})
		copy(into[i+1:], into[i:])
		into[i] = Bucket{Le: le, Count: float64(b.GetCumulativeCount())}
	}
	return into
}

// Window is what a service answered between two snapshots.
type Window struct {
	Requests float64
	Errors   float64
	P95      time.Duration // -1 when there were no requests
	Span     time.Duration
}

// ErrorRate is Errors / Requests (0 without requests).
func (w Window) ErrorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return w.Errors / w.Requests
}

// Between is the window of service from a to b. A counter that went down
// (Traefik restarted) counts from zero.
func Between(a, b Snapshot, service string) Window {
	sa, sb := a.Services[service], b.Services[service]
	if sb.Requests < sa.Requests {
		sa = Service{}
	}
	w := Window{Requests: sb.Requests - sa.Requests, Errors: sb.Errors - sa.Errors, Span: b.At.Sub(a.At)}
	var diff []Bucket
	for _, bb := range sb.Buckets {
		c := bb.Count
		for _, ab := range sa.Buckets {
			if ab.Le == bb.Le {
				c -= ab.Count
			}
		}
		diff = append(diff, Bucket{Le: bb.Le, Count: c})
	}
	w.P95 = quantile(0.95, diff)
	return w
}

// Total is the service's whole history up to s (the baseline of a deploy:
// what the releases before it answered).
func Total(s Snapshot, service string) Window {
	return Between(Snapshot{At: s.At}, s, service)
}

// quantile estimates the q-quantile from cumulative buckets as Prometheus'
// histogram_quantile does: linear within the bucket that holds it.
func quantile(q float64, bs []Bucket) time.Duration {
	if len(bs) == 0 || bs[len(bs)-1].Count <= 0 {
		return -1
	}
	total := bs[len(bs)-1].Count
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.Le, 1) {
				return seconds(prevLe)
			}
			span := b.Count - prevCount
			if span <= 0 {
				return seconds(b.Le)
			}
			return seconds(prevLe + (b.Le-prevLe)*(rank-prevCount)/span)
		}
		prevLe, prevCount = b.Le, b.Count
	}
	return seconds(prevLe)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
