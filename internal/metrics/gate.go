package metrics

import (
	"fmt"
	"time"
)

// Gate is what a release must meet after the switch ([deploy.verify]).
type Gate struct {
	MaxErrorRate   float64 // highest 5xx share, e.g. 0.01
	MaxP95Ratio    float64 // highest p95 against the baseline's; 0: no latency gate
	MinRequests    int     // below it the verdict is "not enough traffic"
	RequireTraffic bool    // "not enough traffic" fails instead of warning
}

// Verdict is the judgement of a window.
type Verdict struct {
	Pass   bool
	Enough bool   // at least MinRequests requests
	Reason string // why it failed, or the warning when there was too little traffic
}

// Judge returns the verdict on w after the switch, against the baseline
// (what the service answered before the deploy). final: the window is over
// (a failure found earlier may be called at once; a pass needs the whole
// window).
func (g Gate) Judge(w, baseline Window, final bool) Verdict {
	v := Verdict{Pass: true, Enough: w.Requests >= float64(g.MinRequests)}
	if !v.Enough {
		if final {
			v.Reason = fmt.Sprintf("not enough traffic: %s requests over %s (min_requests = %d)",
				count(w.Requests), w.Span.Round(time.Second), g.MinRequests)
			v.Pass = !g.RequireTraffic
		}
		return v
	}
	if rate := w.ErrorRate(); rate > g.MaxErrorRate {
		return Verdict{Enough: true, Reason: fmt.Sprintf("5xx %s > %s over %s (%s requests)",
			pct(rate), pct(g.MaxErrorRate), w.Span.Round(time.Second), count(w.Requests))}
	}
	if g.MaxP95Ratio > 0 && baseline.P95 > 0 && w.P95 > 0 {
		if r := float64(w.P95) / float64(baseline.P95); r > g.MaxP95Ratio {
			return Verdict{Enough: true, Reason: fmt.Sprintf("p95 %s = %.1fx the previous release's %s > %.1fx over %s (%s requests)",
				ms(w.P95), r, ms(baseline.P95), g.MaxP95Ratio, w.Span.Round(time.Second), count(w.Requests))}
		}
	}
	return v
}

// Line is one progress line of a window: requests, error rate, p95 now vs
// before.
func Line(w, baseline Window) string {
	before := "n/a"
	if baseline.P95 >= 0 {
		before = ms(baseline.P95)
	}
	now := "n/a"
	if w.P95 >= 0 {
		now = ms(w.P95)
	}
	return fmt.Sprintf("%s requests, 5xx %s, p95 %s (before %s)", count(w.Requests), pct(w.ErrorRate()), now, before)
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}

// count writes n with thousands separators: 1,204.
func count(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	out := ""
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out += ","
		}
		out += string(c)
	}
	return out
}
