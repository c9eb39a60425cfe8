package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Only this machine can be targeted.
func TestLoopbackOnly(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8088/":     true,
		"http://127.0.0.2:8088/":     true,
		"http://[::1]:8088/":         true,
		"http://localhost:8088/":     true,
		"http://10.0.0.1/":           false,
		"http://demo.localhost:8088": false, // resolved by the OS: not checked to be loopback
		"http://example.com/":        false,
		"https://127.0.0.1/":         false,
		"127.0.0.1:8088":             false,
		"":                           false,
	} {
		if err := loopback(target); (err == nil) != ok {
			t.Errorf("loopback(%q) = %v, want ok %v", target, err, ok)
		}
	}
}

// get names the release on the demo page, sends the Host header, and
// counts anything else as a failure.
func TestGet(t *testing.T) {
	page := "<h1>shipit demo</h1>\n<p id=\"version\">version: 20261207-013208</p>\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Host != "demo.localhost":
			http.NotFound(w, r)
		case r.URL.Path == "/bad":
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case r.URL.Path == "/other":
			w.Write([]byte("hello"))
		default:
			w.Write([]byte(page))
		}
	}))
	defer srv.Close()
	client := srv.Client()
	if v, err := get(t.Context(), client, srv.URL+"/", "demo.localhost"); err != nil || v != "20261207-013208" {
		t.Errorf("demo page: %q %v", v, err)
	}
	for path, want := range map[string]string{"/bad": "HTTP 502", "/other": "not the demo page"} {
		if _, err := get(t.Context(), client, srv.URL+path, "demo.localhost"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", path, err, want)
		}
	}
	if _, err := get(t.Context(), client, srv.URL+"/", "other.localhost"); err == nil || err.Error() != "HTTP 404" {
		t.Errorf("another Host: %v, want HTTP 404", err)
	}
}

// The counter keeps releases in the order they first answered.
func TestCounter(t *testing.T) {
	c := &counter{answers: map[string]int{}, errs: map[string]int{}}
	c.record("a", nil)
	c.record("b", nil)
	c.record("a", nil)
	c.record("", errors.New("HTTP 502"))
	if c.sent.Load() != 4 || c.failed.Load() != 1 || strings.Join(c.order, ",") != "a,b" || c.answers["a"] != 2 || c.errs["HTTP 502"] != 1 {
		t.Errorf("counter: sent %d failed %d order %v answers %v errs %v", c.sent.Load(), c.failed.Load(), c.order, c.answers, c.errs)
	}
}
