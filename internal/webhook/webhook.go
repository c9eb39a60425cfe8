// Package webhook makes the HTTP requests of recipes and hooks (deploy
// notifications, webhooks): request building, secret references, a
// timeout bound to the caller's context, and errors that say which host,
// which URL and what to do. It never prints a request body or a header
// value; a URL given as a secret reference is named by its reference.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/shipit-dev/shipit/internal/hint"
)

// DefaultTimeout bounds a request (connect, send, answer) when the caller
// gives none.
const DefaultTimeout = 10 * time.Second

// MaxAnswer is the largest response body read.
const MaxAnswer = 4 << 20

// SecretPrefix marks a value to be replaced by one of the stage's secrets:
// "secret:SLACK_WEBHOOK_URL".
const SecretPrefix = "secret:"

// Request is one HTTP call.
type Request struct {
	Method  string            // GET, POST, ...
	URL     string            // or "secret:NAME"
	Headers map[string]string // values may be "secret:NAME"
	Body    []byte
	// JSON sends Content-Type: application/json (unless Headers set one)
	// and decodes an answer whose Content-Type is JSON into Response.JSON.
	JSON    bool
	Timeout time.Duration // 0: DefaultTimeout
	// Host is the shipit host the call is made for ("" outside a host) and
	// Stage the stage, for messages only.
	Host, Stage string
}

// Response is the answer to a request.
type Response struct {
	Status  int               `lua:"status"`
	Body    string            `lua:"body"`
	Headers map[string]string `lua:"headers"` // lower-case names; repeated headers joined with ", "
	JSON    any               `lua:"json"`    // the decoded body (Request.JSON and a JSON answer)
}

// Client sends requests; the zero value works. It is safe for concurrent
// use.
type Client struct {
	HTTP *http.Client // nil: a shared client honouring HTTP(S)_PROXY
	// Secrets resolve "secret:NAME" values; SecretsErr is why they could
	// not be decrypted, if so.
	Secrets    map[string]string
	SecretsErr error
	// UserAgent defaults to "shipit".
	UserAgent string
}

var defaultHTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}

// Do sends r and returns the answer. A non-2xx status is a *StatusError, a
// failure to get an answer a *TransportError, a bad URL or secret reference
// a hint error. Cancelling ctx aborts the request.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodGet
	}
	target, shown, err := c.resolve(r, "url", r.URL)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, hint.Errorf("give a full http:// or https:// URL, e.g. \"https://hooks.slack.com/services/...\" (or \"secret:NAME\")",
			"%shttp %s %s: not an http(s) URL", where(r.Host), method, shown)
	}
	shown = Display(r.URL)
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return nil, hint.Errorf("check the method and URL", "%shttp %s %s: %v", where(r.Host), method, shown, err)
	}
	if r.Body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "shipit"
	}
	req.Header.Set("User-Agent", ua)
	if r.JSON {
		req.Header.Set("Accept", "application/json")
		if r.Body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !validHeaderName(k) {
			return nil, hint.Errorf("header names are letters, digits and - (e.g. \"Authorization\", \"X-Api-Key\")",
				"%shttp %s %s: invalid header name %q", where(r.Host), method, shown, k)
		}
		v, _, err := c.resolve(r, "header "+k, r.Headers[k])
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, hint.Errorf("a header value is one line", "%shttp %s %s: the value of header %s has a line break",
				where(r.Host), method, shown, k)
		}
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	// A copy with shipit's redirect policy (the Transport is shared).
	policy := *hc
	policy.CheckRedirect = checkRedirect
	resp, err := policy.Do(req)
	if err != nil {
		return nil, transportError(parent, ctx, r, method, shown, timeout, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, transportError(parent, ctx, r, method, shown, timeout, err)
	}
	if len(body) > MaxAnswer {
		return nil, hint.Errorf("ask for less (a smaller page, a filter)",
			"%shttp %s %s: the answer is larger than %d MiB", where(r.Host), method, shown, MaxAnswer>>20)
	}
	out := &Response{Status: resp.StatusCode, Body: string(body), Headers: map[string]string{}}
	for k, vs := range resp.Header {
		out.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, &StatusError{Host: r.Host, Method: method, URL: shown, Status: resp.StatusCode,
			StatusText: http.StatusText(resp.StatusCode), Answer: firstLine(string(body))}
	}
	if r.JSON && isJSON(resp.Header.Get("Content-Type")) && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &out.JSON); err != nil {
			return out, hint.Errorf("the server said its answer is JSON but it is not; read res.body instead (json = false)",
				"%shttp %s %s: invalid JSON in the answer: %v", where(r.Host), method, shown, err)
		}
	}
	return out, nil
}

// MaxRedirects bounds the redirects followed within one host.
const MaxRedirects = 10

// checkRedirect follows a redirect only within the request's own host
// (same host name and port, or http upgraded to https on the default
// ports) and never from https to http. Go's client would otherwise send
// the caller's custom headers (an API key, a token) to whatever host the
// server names, and in cleartext after a downgrade; a secret URL would
// reach that host as the Referer. A redirect it does not follow is
// answered as it came (a StatusError whose hint says so).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", MaxRedirects)
	}
	first, prev := via[0].URL, via[len(via)-1].URL
	if !sameHost(first, req.URL) || (prev.Scheme == "https" && req.URL.Scheme != "https") {
		return http.ErrUseLastResponse
	}
	req.Header.Del("Referer")
	return nil
}

// sameHost reports whether to is the host of from: the same name and
// port, or from's http host on https's default port.
func sameHost(from, to *url.URL) bool {
	if !strings.EqualFold(from.Hostname(), to.Hostname()) {
		return false
	}
	if from.Scheme == to.Scheme {
		return port(from) == port(to)
	}
	return from.Scheme == "http" && to.Scheme == "https" && port(from) == "80" && port(to) == "443"
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Display is how messages show a request's URL: a secret reference as
// itself, a URL with its password masked.
func Display(rawURL string) string {
	if strings.HasPrefix(rawURL, SecretPrefix) {
		return rawURL
	}
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return rawURL
}

// RedactValue returns v (plain data: maps, slices, strings...) with redact
// applied to every string in it, keys included: secret values are hidden
// before a body is encoded, so the encoding stays valid.
func RedactValue(v any, redact func(string) string) any {
	if redact == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return redact(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = RedactValue(e, redact)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[redact(k)] = RedactValue(e, redact)
		}
		return out
	}
	return v
}

// resolve returns the value of v, which may be a secret reference, and how
// messages show it (the reference itself, never a secret's value).
func (c *Client) resolve(r Request, what, v string) (value, shown string, err error) {
	name, ok := strings.CutPrefix(v, SecretPrefix)
	if !ok {
		return v, v, nil
	}
	stage := r.Stage
	if stage == "" {
		stage = "STAGE"
	}
	if c.SecretsErr != nil {
		fix := hint.Of(c.SecretsErr)
		if fix == "" {
			fix = "check your age identity (SHIPIT_AGE_KEY, --identity)"
		}
		return "", v, &hint.Error{Msg: fmt.Sprintf("%s%s %s: the stage's secrets cannot be decrypted: %v", where(r.Host), what, v, c.SecretsErr),
			Fix: fix, Err: c.SecretsErr}
	}
	val, ok := c.Secrets[name]
	if !ok {
		return "", v, hint.Errorf(fmt.Sprintf("add it: shipit secrets set -s %s %s (the value is read from stdin)", stage, name),
			"%s%s %s: stage %s has no secret %s", where(r.Host), what, v, stage, name)
	}
	return val, v, nil
}

func where(host string) string {
	if host == "" {
		return ""
	}
	return "host " + host + ": "
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func validHeaderName(s string) bool { return headerName.MatchString(s) }

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// StatusError is an answer with a status outside 200-299.
type StatusError struct {
	Host       string // "" outside a host
	Method     string
	URL        string // as shown: a secret reference stays one
	Status     int
	StatusText string
	Answer     string // first line of the response body
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%shttp %s %s: status %d", where(e.Host), e.Method, e.URL, e.Status)
	if e.StatusText != "" {
		msg += " " + e.StatusText
	}
	if e.Answer != "" {
		msg += ": " + e.Answer
	}
	return msg
}

// Hint says what the status usually means.
func (e *StatusError) Hint() string {
	switch s := e.Status; {
	case s == 401 || s == 403:
		return "the server refused the credentials: check the token in the URL or the Authorization header (e.g. headers = {Authorization = \"secret:API_TOKEN\"})"
	case s == 404 || s == 410:
		return "check the URL: a webhook that was deleted or mistyped answers " + fmt.Sprint(s)
	case s == 400 || s == 422:
		return "the server refused the request body: check the fields it expects (json = true sends a table as JSON)"
	case s == 405:
		return "the URL does not take " + e.Method + ": check the method (http.get or http.post) and the URL"
	case s == 429:
		return "rate limited: send fewer requests (e.g. notify from the primary host only: if h.primary then ... end)"
	case s >= 500:
		return "the server failed: try again later, or check the service's status"
	case s >= 300 && s < 400:
		return "the server redirects to another host, or from https to http: shipit follows redirects only within the same host " +
			"(the request's headers must not reach another one): use the final URL"
	}
	return ""
}

// TransportError is a request that got no answer: the server was
// unreachable, too slow, or the run was interrupted.
type TransportError struct {
	Host    string
	Method  string
	URL     string
	Timeout time.Duration // set when the request timed out
	Err     error
}

func (e *TransportError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("%shttp %s %s: no answer within %s", where(e.Host), e.Method, e.URL, e.Timeout)
	}
	return fmt.Sprintf("%shttp %s %s: %v", where(e.Host), e.Method, e.URL, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *TransportError) Hint() string {
	var dns *net.DNSError
	var cert x509.UnknownAuthorityError
	var host x509.HostnameError
	var rec tls.RecordHeaderError
	switch {
	case e.Timeout > 0:
		return "check the URL and that the server is up, or allow longer with opts.timeout (e.g. timeout = \"30s\")"
	case errors.Is(e.Err, context.Canceled):
		return ""
	case errors.As(e.Err, &dns):
		return "check the host name in the URL (DNS could not resolve it)"
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "nothing listens there: check the URL's host and port"
	case errors.As(e.Err, &cert), errors.As(e.Err, &host):
		return "the server's TLS certificate is not trusted for that name: check the URL (https needs a valid certificate)"
	case errors.As(e.Err, &rec):
		return "the server does not speak TLS there: use http:// or the right port"
	}
	return "check the URL and the network between this machine and the server"
}

// transportError builds the error of a request that got no answer.
// parent is the caller's context, ctx the one with the request's timeout.
func transportError(parent, ctx context.Context, r Request, method, shown string, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL, which may hold a secret
	}
	te := &TransportError{Host: r.Host, Method: method, URL: shown, Err: err}
	if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		te.Timeout = timeout
	}
	return te
}
