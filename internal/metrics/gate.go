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

// Compare judges a canary's window against the other hosts' over the same
// time (still on the previous release): its 5xx share may exceed theirs by
// at most MaxErrorRate, and its p95 theirs by at most MaxP95Ratio.
func (g Gate) Compare(canary, others Window) Verdict {
	if canary.Requests < float64(g.MinRequests) || others.Requests < float64(g.MinRequests) {
		return Verdict{Pass: true}
	}
	if d := canary.ErrorRate() - others.ErrorRate(); d > g.MaxErrorRate {
		return Verdict{Enough: true, Reason: fmt.Sprintf("5xx %s on the canary vs %s on the other hosts over %s (%s requests)",
			pct(canary.ErrorRate()), pct(others.ErrorRate()), canary.Span.Round(time.Second), count(canary.Requests))}
	}
	if g.MaxP95Ratio > 0 && others.P95 > 0 && canary.P95 > 0 {
		if r := float64(canary.P95) / float64(others.P95); r > g.MaxP95Ratio {
			return Verdict{Enough: true, Reason: fmt.Sprintf("p95 %s on the canary = %.1fx the other hosts' %s > %.1fx",
				ms(canary.P95), r, ms(others.P95), g.MaxP95Ratio)}
		}
	}
	return Verdict{Pass: true, Enough: true}
}

// Line is one progress line of a window: requests, error rate, p95 now vs
// before.
func Line(w, baseline Window) string {
	return Summary(w) + " (before " + p95(baseline) + ")"
}

// Summary is a window in one line: requests, error rate, p95.
func Summary(w Window) string {
	return fmt.Sprintf("%s requests, 5xx %s, p95 %s", count(w.Requests), pct(w.ErrorRate()), p95(w))
}

func p95(w Window) string {
	if w.P95 < 0 {
		return "n/a"
	}
	return ms(w.P95)
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
