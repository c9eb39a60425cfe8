// Command demoload is the live request counter of `make demo`: it sends
// GET requests through Traefik (on this machine's loopback only) while the
// next release is deployed, prints the counts every few seconds, and at
// the end the totals and which releases answered.
//
//	demoload -url http://127.0.0.1:8088/ -host demo.localhost            # until SIGINT/SIGTERM
//	demoload -url http://127.0.0.1:8088/ -host demo.localhost -wait 30s  # until it answers once
//
// It stops on SIGINT or SIGTERM, after -for, or after -max requests,
// whichever comes first. Exit status: 0 when no request failed, 1 when
// some did, 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// version finds the release the demo page names (examples/demo/www/index.html).
var version = regexp.MustCompile(`id="version">version: ([^<]*)<`)

type counter struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	order        []string       // releases in the order they first answered
	answers      map[string]int // release -> answers
	errs         map[string]int // failure reason -> count
	last         string
}

func (c *counter) record(ver string, err error) {
	c.sent.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed.Add(1)
		c.errs[err.Error()]++
		return
	}
	if _, ok := c.answers[ver]; !ok {
		c.order = append(c.order, ver)
	}
	c.answers[ver]++
	c.last = ver
}

// get sends one request on a new connection (as a browser's new visitor
// would), and returns the release that answered.
func get(ctx context.Context, client *http.Client, target, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s", shortErr(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading the answer: %s", shortErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	m := version.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("HTTP 200 but not the demo page")
	}
	return string(m[1]), nil
}

// shortErr keeps the last part of a transport error ("connection refused").
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// loopback refuses any target but this machine: the counter is for the
// local demo, never a load tool against someone else's server.
func loopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT/", target)
	}
	if u.Hostname() == "localhost" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q: only loopback addresses (127.0.0.1, ::1) are allowed", target)
	}
	return nil
}

func main() {
	target := flag.String("url", "", "where to send requests (loopback only), e.g. http://127.0.0.1:8088/")
	host := flag.String("host", "", "Host header (Traefik routes on it), e.g. demo.localhost")
	wait := flag.Duration("wait", 0, "instead of counting: wait up to this long for one answer, print its release and exit")
	maxFor := flag.Duration("for", 3*time.Minute, "stop after this long at most")
	maxReq := flag.Int64("max", 50000, "stop after this many requests at most")
	workers := flag.Int("clients", 2, "concurrent clients, each one request at a time")
	pause := flag.Duration("pause", 10*time.Millisecond, "pause of each client between requests")
	every := flag.Duration("every", 2*time.Second, "print the counts this often")
	flag.Parse()
	if err := loopback(*target); err != nil {
		fmt.Fprintln(os.Stderr, "demoload:", err)
		os.Exit(2)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

	if *wait > 0 {
		deadline := time.Now().Add(*wait)
		var last error
		for time.Now().Before(deadline) {
			ver, err := get(context.Background(), client, *target, *host)
			if err == nil {
				fmt.Println(ver)
				return
			}
			last = err
			time.Sleep(200 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "demoload: %s (Host %s) did not answer with the demo page within %s: %v\n", *target, *host, *wait, last)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxFor)
	defer cancel()
	c := &counter{answers: map[string]int{}, errs: map[string]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && c.sent.Load() < *maxReq {
				ver, err := get(ctx, client, *target, *host)
				if err != nil && ctx.Err() != nil {
					return // cut because demoload is stopping, not failed by the server
				}
				c.record(ver, err)
				select {
				case <-ctx.Done():
				case <-time.After(*pause):
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(*every)
	defer tick.Stop()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			c.mu.Lock()
			fmt.Printf("  traffic | %d sent, %d failed | answering: %s\n", c.sent.Load(), c.failed.Load(), c.last)
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var by []string
	for _, v := range c.order {
		by = append(by, fmt.Sprintf("%s (%d)", v, c.answers[v]))
	}
	fmt.Printf("traffic through Traefik: %d sent, %d failed in %s; answered by %s\n",
		c.sent.Load(), c.failed.Load(), time.Since(start).Round(100*time.Millisecond), strings.Join(by, " then "))
	if c.failed.Load() > 0 {
		var reasons []string
		for r, n := range c.errs {
			reasons = append(reasons, fmt.Sprintf("%s ×%d", r, n))
		}
		sort.Strings(reasons)
		fmt.Printf("failures: %s\n", strings.Join(reasons, ", "))
		os.Exit(1)
	}
}
