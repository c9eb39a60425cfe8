package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TraefikImage is the real Traefik built by scripts/testenv.sh (no registry
// is reachable here): the binary at /traefik of an image FROM BaseImage.
const TraefikImage = "shipit-traefik:v3.6.12"

// RequireImage fails the test unless image is on the engine of s (nil: the
// default engine).
func (e *Env) RequireImage(t testing.TB, s *SSHD, image string) {
	t.Helper()
	var env []string
	if s != nil && s.DockerHost != "" {
		env = []string{"DOCKER_HOST=" + s.DockerHost}
	}
	if _, err := run("", env, nil, "docker", "image", "inspect", "--format", "{{.Id}}", image); err != nil {
		t.Fatalf("harness: image %s is missing: %v\n%s", image, err, setupHint)
	}
}

// LoadImage copies image from the default engine into the engine of the
// isolated host s (docker save | docker load).
func (e *Env) LoadImage(t testing.TB, s *SSHD, image string) {
	t.Helper()
	e.RequireImage(t, nil, image)
	if s == nil || s.DockerHost == "" {
		return
	}
	if err := pipeImage(image, s.DockerHost); err != nil {
		t.Fatalf("harness: loading %s into %s: %v", image, s.DockerHost, err)
	}
}

// TraefikOpts configures StartTraefik.
type TraefikOpts struct {
	// Name of the container (default "shipit-test-traefik-<random>"); it is
	// also the value of the constraint label (see Traefik.Labels).
	Name string
	// Network the Docker provider routes on; created when missing and
	// removed in t.Cleanup if created (default Name+"-net").
	Network string
	// API serves Traefik's API (api.insecure, entrypoint "traefik" on :8080
	// in the container) on a loopback port of the host (Traefik.APIURL).
	API bool
	// Args are extra Traefik arguments (e.g. "--log.level=DEBUG",
	// "--providers.docker.throttleDuration=500ms").
	Args []string
}

// Traefik is a Traefik container started by StartTraefik.
type Traefik struct {
	Name    string
	Network string
	URL     string // http://127.0.0.1:PORT: the "web" entrypoint (:80 in the container)
	APIURL  string // http://127.0.0.1:PORT of the API ("" unless opts.API)

	env  *Env
	host *SSHD
}

// StartTraefik runs TraefikImage on the engine of s (nil: the default
// engine) for tests that do not go through `shipit setup` (which is the
// product path). It routes only containers that carry the labels of
// Traefik.Labels (a provider constraint), so several tests can share an
// engine. It returns once the web entrypoint answers; the container (and
// the network, if created) is removed in t.Cleanup.
func (e *Env) StartTraefik(t testing.TB, s *SSHD, opts TraefikOpts) *Traefik {
	t.Helper()
	e.RequireImage(t, s, TraefikImage)
	if opts.Name == "" {
		opts.Name = "shipit-test-traefik-" + randHex(4)
	}
	if opts.Network == "" {
		opts.Network = opts.Name + "-net"
	}
	tr := &Traefik{Name: opts.Name, Network: opts.Network, env: e, host: s}
	if _, err := e.docker(s, "network", "inspect", opts.Network); err != nil {
		e.Docker(t, s, "network", "create", opts.Network)
		t.Cleanup(func() { _, _ = e.docker(s, "network", "rm", opts.Network) })
	}
	sock := "/var/run/docker.sock"
	if s != nil && strings.HasPrefix(s.DockerHost, "unix://") {
		sock = strings.TrimPrefix(s.DockerHost, "unix://")
	}
	args := []string{"run", "-d", "--name", opts.Name, "--network", opts.Network,
		"-v", sock + ":/var/run/docker.sock:ro", "-p", "127.0.0.1::80"}
	if opts.API {
		args = append(args, "-p", "127.0.0.1::8080")
	}
	args = append(args, TraefikImage,
		"--providers.docker=true",
		"--providers.docker.exposedbydefault=false",
		"--providers.docker.network="+opts.Network,
		"--providers.docker.constraints=Label(`shipit.test.traefik`,`"+opts.Name+"`)",
		"--entrypoints.web.address=:80",
	)
	if opts.API {
		args = append(args, "--api.insecure=true", "--entrypoints.traefik.address=:8080")
	}
	args = append(args, opts.Args...)
	e.Docker(t, s, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("harness: logs of %s (tail):\n%s", opts.Name, tail(tr.logs(), 6000))
		}
		_, _ = e.docker(s, "rm", "-f", opts.Name)
	})
	tr.URL = "http://" + e.hostPort(t, s, opts.Name, "80/tcp")
	if opts.API {
		tr.APIURL = "http://" + e.hostPort(t, s, opts.Name, "8080/tcp")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(tr.URL + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: Traefik %s not answering on %s after 30s: %v\n--- logs ---\n%s", opts.Name, tr.URL, err, tail(tr.logs(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return tr
}

// Labels are the container labels that make Traefik tr route a container
// to port on router and service names (with rule Host(`host`), entrypoint
// web): pass them to `docker run --label` or a compose file.
func (tr *Traefik) Labels(router, service, host string, port int) map[string]string {
	return map[string]string{
		"traefik.enable":                                                 "true",
		"traefik.docker.network":                                         tr.Network,
		"shipit.test.traefik":                                            tr.Name,
		"traefik.http.routers." + router + ".rule":                       "Host(`" + host + "`)",
		"traefik.http.routers." + router + ".entrypoints":                "web",
		"traefik.http.routers." + router + ".service":                    service,
		"traefik.http.services." + service + ".loadbalancer.server.port": strconv.Itoa(port),
	}
}

// LabelArgs turns labels into `docker run` arguments (--label k=v ...).
func LabelArgs(labels map[string]string) []string {
	var args []string
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	return args
}

// Logs returns the container's log (Traefik logs on stdout).
func (tr *Traefik) Logs(t testing.TB) string {
	t.Helper()
	return tr.logs()
}

func (tr *Traefik) logs() string {
	out, err := tr.env.docker(tr.host, "logs", tr.Name)
	if err != nil {
		return err.Error()
	}
	return out
}

// API GETs path (e.g. "/api/http/services/web@docker") from the API and
// decodes the JSON answer into v; it returns the HTTP status and the raw
// body. It fails the test on a transport error or when the API is off.
func (tr *Traefik) API(t testing.TB, path string, v any) (int, []byte) {
	t.Helper()
	if tr.APIURL == "" {
		t.Fatalf("harness: Traefik %s was started without API", tr.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tr.APIURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("harness: GET %s%s: %v", tr.APIURL, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("harness: GET %s%s: %v\n%s", tr.APIURL, path, err, body)
		}
	}
	return resp.StatusCode, body
}

// TraefikService is the part of the API's answer for an HTTP service
// (GET /api/http/services/NAME@docker) that tells which servers are in
// rotation.
type TraefikService struct {
	Name         string            `json:"name"`
	Provider     string            `json:"provider"`
	Status       string            `json:"status"`
	UsedBy       []string          `json:"usedBy"`
	ServerStatus map[string]string `json:"serverStatus"`
	LoadBalancer struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	} `json:"loadBalancer"`
}

// Servers returns the server URLs of service (e.g. "web@docker"), or nil
// when Traefik has no such service (404).
func (tr *Traefik) Servers(t testing.TB, service string) []string {
	t.Helper()
	var s TraefikService
	code, body := tr.API(t, "/api/http/services/"+service, &s)
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil
	default:
		t.Fatalf("harness: GET /api/http/services/%s: %d %s", service, code, body)
	}
	var urls []string
	for _, sv := range s.LoadBalancer.Servers {
		urls = append(urls, sv.URL)
	}
	return urls
}

// Get sends GET URL+path with Host header host on a new connection and
// returns the status and body (status 0 and the error text on a transport
// error).
func (tr *Traefik) Get(host, path string) (int, string) {
	return HTTPGet(tr.URL+path, host)
}

// HTTPGet sends one GET with Host header host (when not "") on a new
// connection, with a 5s timeout; it returns the status and body, or 0 and
// the error text on a transport error.
func HTTPGet(url, host string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// WaitAnswer polls GET url with Host header host until the body (trimmed)
// is want, and returns how long that took; it fails the test after timeout.
func WaitAnswer(t testing.TB, url, host, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var code int
	var body string
	for time.Since(start) < timeout {
		code, body = HTTPGet(url, host)
		if strings.TrimSpace(body) == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("harness: GET %s (Host %s) did not answer %q within %v; last: %d %q", url, host, want, timeout, code, tail(body, 300))
	return 0
}

// hostPort returns "127.0.0.1:PORT", the host side of container port
// (e.g. "80/tcp") of container name.
func (e *Env) hostPort(t testing.TB, s *SSHD, name, port string) string {
	t.Helper()
	out := strings.TrimSpace(e.Docker(t, s, "port", name, port))
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "127.0.0.1:") {
			return l
		}
	}
	t.Fatalf("harness: container %s publishes %s as %q, not on 127.0.0.1", name, port, out)
	return ""
}

// docker runs the docker CLI against the engine of s and returns stdout or
// an error (no test failure).
func (e *Env) docker(s *SSHD, args ...string) (string, error) {
	var env []string
	if s != nil && s.DockerHost != "" {
		env = []string{"DOCKER_HOST=" + s.DockerHost}
	}
	return run("", env, nil, "docker", args...)
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// String names tr for logs.
func (tr *Traefik) String() string { return fmt.Sprintf("traefik %s (%s)", tr.Name, tr.URL) }
