package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/hint"
)

type seen struct {
	mu     sync.Mutex
	method string
	path   string
	header http.Header
	body   string
}

func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.method, s.path, s.header, s.body = r.Method, r.URL.RequestURI(), r.Header.Clone(), string(b)
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func TestGet(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		io.WriteString(w, "hello\n")
	})
	res, err := (&Client{}).Do(context.Background(), Request{URL: srv.URL + "/ping?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Body != "hello\n" || res.Headers["x-multi"] != "a, b" || res.JSON != nil {
		t.Fatalf("%+v", res)
	}
	if s.method != "GET" || s.path != "/ping?x=1" || s.header.Get("User-Agent") != "shipit" {
		t.Fatalf("server saw %s %s %v", s.method, s.path, s.header)
	}
}

func TestPostJSON(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/text" {
			io.WriteString(w, "ok") // Slack answers text/plain "ok"
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"id": 7, "tags": ["a", "b"]}`)
	})
	c := &Client{}
	res, err := c.Do(context.Background(), Request{Method: "post", URL: srv.URL + "/hook", Body: []byte(`{"text":"hi"}`), JSON: true,
		Headers: map[string]string{"X-Token": "t0k", "Content-Type": "application/vnd.custom+json"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": float64(7), "tags": []any{"a", "b"}}
	if b1, b2 := mustJSON(res.JSON), mustJSON(want); b1 != b2 {
		t.Fatalf("decoded %s, want %s", b1, b2)
	}
	if s.method != "POST" || s.body != `{"text":"hi"}` || s.header.Get("X-Token") != "t0k" ||
		s.header.Get("Content-Type") != "application/vnd.custom+json" || s.header.Get("Accept") != "application/json" {
		t.Fatalf("server saw %s %q %v", s.method, s.body, s.header)
	}
	res, err = c.Do(context.Background(), Request{Method: "POST", URL: srv.URL + "/text", Body: []byte(`{}`), JSON: true})
	if err != nil || res.Body != "ok" || res.JSON != nil || s.header.Get("Content-Type") != "application/json" {
		t.Fatalf("text answer: %+v %v (sent %v)", res, err, s.header)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSecretReferences(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cr3t-token" {
			w.WriteHeader(401)
			io.WriteString(w, "bad token\nsecond line")
		}
	})
	c := &Client{Secrets: map[string]string{"HOOK": srv.URL + "/services/T0/B0/XyZsecretpath", "AUTH": "Bearer s3cr3t-token"}}
	_, err := c.Do(context.Background(), Request{Method: "POST", URL: "secret:HOOK", Headers: map[string]string{"Authorization": "secret:AUTH"}, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if s.path != "/services/T0/B0/XyZsecretpath" {
		t.Fatalf("path %s", s.path)
	}
	// A refusal names the reference, the status and the answer's first
	// line; never the URL's value, a header value or the body.
	_, err = c.Do(context.Background(), Request{Method: "POST", URL: "secret:HOOK", Host: "10.0.0.1",
		Headers: map[string]string{"Authorization": "Bearer wrong-value"}, Body: []byte("body-content")})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("want a 401 StatusError, got %v", err)
	}
	msg := err.Error()
	if msg != "host 10.0.0.1: http POST secret:HOOK: status 401 Unauthorized: bad token" {
		t.Fatalf("message %q", msg)
	}
	for _, leak := range []string{"XyZsecretpath", "wrong-value", "body-content", "s3cr3t"} {
		if strings.Contains(msg+hint.Of(err), leak) {
			t.Fatalf("error shows %q: %s / %s", leak, msg, hint.Of(err))
		}
	}
	if !strings.Contains(hint.Of(err), "Authorization") {
		t.Fatalf("hint %q", hint.Of(err))
	}

	_, err = c.Do(context.Background(), Request{URL: "secret:NOPE", Stage: "production", Host: "h1"})
	if err == nil || err.Error() != "host h1: url secret:NOPE: stage production has no secret NOPE" ||
		hint.Of(err) != "add it: shipit secrets set -s production NOPE (the value is read from stdin)" {
		t.Fatalf("unknown secret: %v / %s", err, hint.Of(err))
	}
	_, err = c.Do(context.Background(), Request{URL: srv.URL, Headers: map[string]string{"X-Key": "secret:MISSING"}, Stage: "staging"})
	if err == nil || !strings.Contains(err.Error(), "header X-Key secret:MISSING: stage staging has no secret MISSING") {
		t.Fatalf("unknown header secret: %v", err)
	}
	undecryptable := &Client{SecretsErr: hint.New("no identity can decrypt production.age", "set SHIPIT_AGE_KEY")}
	_, err = undecryptable.Do(context.Background(), Request{URL: "secret:HOOK"})
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted: no identity") || hint.Of(err) != "set SHIPIT_AGE_KEY" {
		t.Fatalf("undecryptable: %v / %s", err, hint.Of(err))
	}
}

func TestStatusErrors(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(404)
			io.WriteString(w, "\n  no_service  \nmore")
		case "/busy":
			w.WriteHeader(503)
		case "/limit":
			w.WriteHeader(429)
		}
	})
	c := &Client{}
	for _, tc := range []struct{ path, msg, hint string }{
		{"/gone", "http GET " + srv.URL + "/gone: status 404 Not Found: no_service", "check the URL"},
		{"/busy", "http GET " + srv.URL + "/busy: status 503 Service Unavailable", "try again later"},
		{"/limit", "http GET " + srv.URL + "/limit: status 429 Too Many Requests", "h.primary"},
	} {
		res, err := c.Do(context.Background(), Request{URL: srv.URL + tc.path})
		if err == nil || err.Error() != tc.msg || !strings.Contains(hint.Of(err), tc.hint) {
			t.Errorf("%s: %v / %s", tc.path, err, hint.Of(err))
		}
		if res == nil || res.Status < 400 {
			t.Errorf("%s: no response with the error: %+v", tc.path, res)
		}
	}
}

func TestURLPasswordIsNotShown(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	u := strings.Replace(srv.URL, "http://", "http://user:pa55word@", 1)
	_, err := (&Client{}).Do(context.Background(), Request{URL: u + "/x"})
	if err == nil || strings.Contains(err.Error(), "pa55word") || !strings.Contains(err.Error(), "user:xxxxx@") {
		t.Fatalf("%v", err)
	}
	if user, pass, ok := (&http.Request{Header: s.header}).BasicAuth(); !ok || user != "user" || pass != "pa55word" {
		t.Fatal("basic auth not sent")
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	_, err := (&Client{}).Do(context.Background(), Request{URL: srv.URL, Timeout: 200 * time.Millisecond, Host: "h1"})
	var te *TransportError
	if !errors.As(err, &te) || te.Timeout != 200*time.Millisecond || err.Error() != "host h1: http GET "+srv.URL+": no answer within 200ms" ||
		!strings.Contains(hint.Of(err), "opts.timeout") {
		t.Fatalf("timeout: %v / %s", err, hint.Of(err))
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("timeout not honoured")
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start = time.Now()
	_, err = (&Client{}).Do(ctx, Request{URL: srv.URL})
	if !errors.Is(err, context.Canceled) || hint.Of(err) != "" {
		t.Fatalf("cancel: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel not honoured")
	}
}

func TestTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = (&Client{}).Do(context.Background(), Request{URL: "http://" + addr + "/x"})
	if err == nil || !strings.HasPrefix(err.Error(), "http GET http://"+addr+"/x: ") || !strings.Contains(hint.Of(err), "nothing listens") {
		t.Fatalf("refused: %v / %s", err, hint.Of(err))
	}
	if strings.Count(err.Error(), "http://") != 1 {
		t.Fatalf("URL repeated: %v", err)
	}
	for _, bad := range []string{"", "hooks.slack.com/x", "ftp://x/y", "http://", "secret"} {
		_, err := (&Client{}).Do(context.Background(), Request{URL: bad})
		if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") || !strings.Contains(hint.Of(err), "https://") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	_, err = (&Client{}).Do(context.Background(), Request{URL: "http://127.0.0.1:1/", Headers: map[string]string{"Bad Name": "x"}})
	if err == nil || !strings.Contains(err.Error(), `invalid header name "Bad Name"`) {
		t.Fatalf("bad header: %v", err)
	}
	_, err = (&Client{}).Do(context.Background(), Request{URL: "http://127.0.0.1:1/", Headers: map[string]string{"X": "a\r\nInjected: 1"}})
	if err == nil || !strings.Contains(err.Error(), "header X has a line break") || strings.Contains(err.Error(), "Injected") {
		t.Fatalf("header injection: %v", err)
	}
}

func TestInvalidJSONAnswer(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{oops")
	})
	res, err := (&Client{}).Do(context.Background(), Request{URL: srv.URL, JSON: true})
	if err == nil || !strings.Contains(err.Error(), "invalid JSON in the answer") || res == nil || res.Body != "{oops" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRedactValue(t *testing.T) {
	redact := func(s string) string { return strings.ReplaceAll(s, `p"w`, "***") }
	in := map[string]any{"text": `failed: p"w refused`, "list": []any{`p"w`, 1.0, true, nil}, `k p"w`: map[string]any{"x": `p"w`}}
	got := mustJSON(RedactValue(in, redact))
	if got != `{"k ***":{"x":"***"},"list":["***",1,true,null],"text":"failed: *** refused"}` {
		t.Fatalf("%s", got)
	}
	if RedactValue("x", nil) != "x" {
		t.Fatal("nil redact")
	}
}
