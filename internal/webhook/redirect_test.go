package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/shipit-dev/shipit/internal/hint"
)

// A server that redirects to another host never gets the request's secret
// header there: the redirect is not followed, and the caller learns why.
func TestRedirectToAnotherHostNeverForwardsSecrets(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	second, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Method+" "+r.URL.Path+" key="+r.Header.Get("X-Api-Key")+" auth="+r.Header.Get("Authorization")+" referer="+r.Header.Get("Referer"))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	for _, code := range []int{301, 302, 303, 307, 308} {
		first, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, second.URL+"/elsewhere", code)
		})
		c := &Client{Secrets: map[string]string{"API_KEY": "s3cret-key", "HOOK": first.URL + "/hook/T0KEN"}}
		res, err := c.Do(context.Background(), Request{Method: "POST", URL: "secret:HOOK", Body: []byte(`{"text":"hi"}`), JSON: true,
			Headers: map[string]string{"X-Api-Key": "secret:API_KEY", "Authorization": "Bearer secret-token"}})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != code || res == nil || res.Status != code {
			t.Fatalf("%d: %v, %+v", code, err, res)
		}
		if !strings.Contains(hint.Of(err), "only within the same host") || strings.Contains(err.Error(), "T0KEN") {
			t.Fatalf("%d: %v / %s", code, err, hint.Of(err))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("the second host was sent: %q", leaked)
	}
}

// Within one host a redirect is followed, headers kept.
func TestRedirectWithinTheHostIsFollowed(t *testing.T) {
	var got string
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusPermanentRedirect)
			return
		}
		got = r.Method + " " + r.URL.Path + " " + r.Header.Get("X-Api-Key")
		io.WriteString(w, "ok")
	})
	c := &Client{Secrets: map[string]string{"API_KEY": "k"}}
	res, err := c.Do(context.Background(), Request{Method: "POST", URL: srv.URL + "/old", Body: []byte("x"),
		Headers: map[string]string{"X-Api-Key": "secret:API_KEY"}})
	if err != nil || res.Body != "ok" || got != "POST /new k" {
		t.Fatalf("%v, %+v, server saw %q", err, res, got)
	}
}

func TestCheckRedirectPolicy(t *testing.T) {
	req := func(u string) *http.Request {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: pu, Header: http.Header{"Referer": {u}}}
	}
	cases := []struct {
		chain  []string // the requests so far, then the redirect's target
		follow bool
	}{
		{[]string{"https://api.example.com/a", "https://api.example.com/b"}, true},
		{[]string{"https://api.example.com/a", "https://API.example.com:443/b"}, true},
		{[]string{"http://api.example.com/a", "https://api.example.com/b"}, true},  // upgrade
		{[]string{"https://api.example.com/a", "http://api.example.com/b"}, false}, // downgrade
		{[]string{"http://api.example.com/a", "https://api.example.com/b", "http://api.example.com/c"}, false},
		{[]string{"https://api.example.com/a", "https://evil.example.net/b"}, false},
		{[]string{"https://api.example.com/a", "https://sub.api.example.com/b"}, false},
		{[]string{"https://api.example.com/a", "https://api.example.com:8443/b"}, false},
		{[]string{"http://api.example.com:8080/a", "https://api.example.com:8443/b"}, false},
	}
	for _, c := range cases {
		var via []*http.Request
		for _, u := range c.chain[:len(c.chain)-1] {
			via = append(via, req(u))
		}
		next := req(c.chain[len(c.chain)-1])
		err := checkRedirect(next, via)
		if (err == nil) != c.follow || (err != nil && err != http.ErrUseLastResponse) {
			t.Errorf("%v: follow=%v err=%v", c.chain, err == nil, err)
		}
		if err == nil && next.Header.Get("Referer") != "" {
			t.Errorf("%v: Referer kept", c.chain)
		}
	}
	var via []*http.Request
	for range MaxRedirects {
		via = append(via, req("https://api.example.com/a"))
	}
	if err := checkRedirect(req("https://api.example.com/b"), via); err == nil || err == http.ErrUseLastResponse {
		t.Errorf("redirect loop not stopped: %v", err)
	}
}
