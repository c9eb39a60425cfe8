package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LoadOpts configures StartLoad.
type LoadOpts struct {
	// URL is where requests go, e.g. "http://127.0.0.1:8080" (Traefik's
	// entrypoint); fast requests GET URL+"/", slow ones URL+"/slow?ms=N".
	URL string
	// Host is the Host header (Traefik routes on it); "" keeps the URL's.
	Host string
	// Clients is the number of concurrent fast clients (default 4). Each
	// sends one request at a time, each on a new connection (no keep-alive),
	// and pauses Pause between requests (default 20ms; negative: none).
	Clients int
	Pause   time.Duration
	// SlowEvery starts one slow request (GET /slow?ms=SlowMs) every
	// SlowEvery (default 1s; negative: no slow requests); SlowMs defaults
	// to 2000.
	SlowEvery time.Duration
	SlowMs    int
	// Timeout bounds a fast request (default 5s); a slow one gets SlowMs
	// more.
	Timeout time.Duration
}

// Request is one request of a load run.
type Request struct {
	Start   time.Time
	Latency time.Duration
	Slow    bool
	Status  int    // HTTP status; 0 on a transport error
	Version string // "<V>" of a "version <V>" answer; "" otherwise
	Kind    string // "" for a 2xx answer, else the failure kind (see Load)
	Err     string // the error or the first line of a non-2xx body
}

// Failed reports whether r failed (non-2xx answer or transport error).
func (r Request) Failed() bool { return r.Kind != "" }

// Load is a running load generator: see StartLoad.
//
// Failure kinds: "502", "503", "404" (and "status N" for other non-2xx
// answers), "timeout", "reset" (connection reset by peer), "refused",
// "eof" (connection closed before an answer), "other".
type Load struct {
	opts   LoadOpts
	start  time.Time
	cancel context.CancelFunc
	fast   sync.WaitGroup // fast clients and the slow ticker
	slow   sync.WaitGroup // in-flight slow requests
	mu     sync.Mutex
	reqs   []Request
	once   sync.Once
	report *LoadReport
}

// StartLoad starts a load generator against opts.URL; stop it with Stop
// (it is also stopped in t.Cleanup). Every request uses a new TCP
// connection, so a backend that stops accepting is seen at once.
func StartLoad(t testing.TB, opts LoadOpts) *Load {
	t.Helper()
	if opts.URL == "" {
		t.Fatal("harness: StartLoad needs a URL")
	}
	if _, err := url.Parse(opts.URL); err != nil {
		t.Fatalf("harness: StartLoad: %v", err)
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	if opts.Clients <= 0 {
		opts.Clients = 4
	}
	if opts.Pause == 0 {
		opts.Pause = 20 * time.Millisecond
	}
	if opts.SlowEvery == 0 {
		opts.SlowEvery = time.Second
	}
	if opts.SlowMs <= 0 {
		opts.SlowMs = 2000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{opts: opts, start: time.Now(), cancel: cancel}
	client := &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: opts.Timeout}).DialContext,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for i := 0; i < opts.Clients; i++ {
		l.fast.Add(1)
		go func() {
			defer l.fast.Done()
			for ctx.Err() == nil {
				l.do(client, opts.URL+"/", false, opts.Timeout)
				if opts.Pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(opts.Pause):
					}
				}
			}
		}()
	}
	if opts.SlowEvery > 0 {
		l.fast.Add(1)
		go func() {
			defer l.fast.Done()
			tick := time.NewTicker(opts.SlowEvery)
			defer tick.Stop()
			for {
				l.slow.Add(1)
				go func() {
					defer l.slow.Done()
					l.do(client, fmt.Sprintf("%s/slow?ms=%d", opts.URL, opts.SlowMs), true,
						opts.Timeout+time.Duration(opts.SlowMs)*time.Millisecond)
				}()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// do sends one request. It does not use the generator's context: a
// request started before Stop runs to its end (or its timeout).
func (l *Load) do(client *http.Client, u string, slow bool, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := Request{Start: time.Now(), Slow: slow}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		panic(err)
	}
	if l.opts.Host != "" {
		req.Host = l.opts.Host
	}
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		r.Status = resp.StatusCode
	}
	r.Latency = time.Since(r.Start)
	switch {
	case err != nil:
		r.Status = 0
		r.Kind = errKind(err)
		r.Err = err.Error()
	case r.Status < 200 || r.Status > 299:
		r.Kind = fmt.Sprint(r.Status)
		if r.Status != 502 && r.Status != 503 && r.Status != 404 {
			r.Kind = "status " + r.Kind
		}
		r.Err = fmt.Sprintf("%d %s", r.Status, strings.SplitN(strings.TrimSpace(string(body)), "\n", 2)[0])
	default:
		if v, ok := strings.CutPrefix(strings.TrimSpace(string(body)), "version "); ok {
			r.Version = v
		}
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, r)
	l.mu.Unlock()
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// Elapsed is the time since the load started.
func (l *Load) Elapsed() time.Duration { return time.Since(l.start) }

// Snapshot returns the requests finished so far.
func (l *Load) Snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.reqs...)
}

// Stop stops starting requests, waits for those in flight (slow ones
// included) and returns the report. Later calls return the same report.
func (l *Load) Stop() LoadReport {
	l.once.Do(func() {
		l.cancel()
		l.fast.Wait()
		l.slow.Wait()
		r := NewLoadReport(l.start, time.Now(), l.Snapshot())
		l.report = &r
	})
	return *l.report
}

// LoadReport sums up the requests of a load run (or of a window of it).
type LoadReport struct {
	From, To time.Time // the span of request start times it covers
	Sent     int       // requests sent (fast and slow)
	Failed   int       // non-2xx answers and transport errors (fast and slow)
	// ByKind counts failures by kind; Samples keeps up to 3 errors of each.
	ByKind  map[string]int
	Samples map[string][]string
	// SlowStarted, SlowCompleted: slow requests sent, and answered 2xx.
	SlowStarted, SlowCompleted int
	// Versions counts 2xx answers by the version they named.
	Versions map[string]int
	// P50, P99, Max: latency of the fast requests (failed ones included).
	P50, P99, Max time.Duration
	// FirstFailure, LastFailure: start times of the first and last failed
	// request (zero when none failed).
	FirstFailure, LastFailure time.Time
	// Requests are all the requests, by start time.
	Requests []Request
}

// NewLoadReport sums up the requests that started in [from, to).
func NewLoadReport(from, to time.Time, reqs []Request) LoadReport {
	r := LoadReport{From: from, To: to, ByKind: map[string]int{}, Samples: map[string][]string{}, Versions: map[string]int{}}
	var lat []time.Duration
	for _, q := range reqs {
		if q.Start.Before(from) || !q.Start.Before(to) {
			continue
		}
		r.Requests = append(r.Requests, q)
	}
	sort.Slice(r.Requests, func(i, j int) bool { return r.Requests[i].Start.Before(r.Requests[j].Start) })
	for _, q := range r.Requests {
		r.Sent++
		if q.Slow {
			r.SlowStarted++
			if !q.Failed() {
				r.SlowCompleted++
			}
		} else {
			lat = append(lat, q.Latency)
		}
		if q.Failed() {
			r.Failed++
			r.ByKind[q.Kind]++
			if len(r.Samples[q.Kind]) < 3 {
				r.Samples[q.Kind] = append(r.Samples[q.Kind], q.Err)
			}
			if r.FirstFailure.IsZero() {
				r.FirstFailure = q.Start
			}
			r.LastFailure = q.Start
		} else {
			r.Versions[q.Version]++
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50 = lat[(len(lat)-1)*50/100]
		r.P99 = lat[(len(lat)-1)*99/100]
		r.Max = lat[len(lat)-1]
	}
	return r
}

// Window sums up the requests of r that started in [from, to): e.g. the
// seconds around a switch against the seconds before it.
func (r LoadReport) Window(from, to time.Time) LoadReport {
	return NewLoadReport(from, to, r.Requests)
}

// String is a one-paragraph summary, with failure times relative to From.
func (r LoadReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sent in %v, %d failed", r.Sent, r.To.Sub(r.From).Round(time.Millisecond), r.Failed)
	if r.Sent > 0 {
		fmt.Fprintf(&b, " (%.1f%%)", 100*float64(r.Failed)/float64(r.Sent))
	}
	if r.Failed > 0 {
		fmt.Fprintf(&b, " %s, between +%v and +%v", fmtCounts(r.ByKind),
			r.FirstFailure.Sub(r.From).Round(time.Millisecond), r.LastFailure.Sub(r.From).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "; slow %d/%d completed; versions %s; fast latency p50 %v p99 %v max %v",
		r.SlowCompleted, r.SlowStarted, fmtCounts(r.Versions),
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Max.Round(100*time.Microsecond))
	kinds := make([]string, 0, len(r.Samples))
	for k := range r.Samples {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n  %s: %s", k, strings.Join(r.Samples[k], " | "))
	}
	return b.String()
}

func fmtCounts(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
