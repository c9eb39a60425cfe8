// Package traefik takes releases in and out of Traefik's rotation without
// dropping requests: it waits until Traefik routes to a new release before
// the old one stops, and drains the old one (out of rotation, confirmed)
// before it is stopped.
//
// How Traefik is asked: `shipit setup` runs Traefik with its API on an
// entrypoint bound to the loopback of Traefik's own container: no other
// container and nothing outside can reach it; shipit reads it with
// `docker exec traefik wget` (the official image and ours have wget).
// Without that API (a Traefik shipit did not set up), the waits fall back
// to Docker's view: a container Docker calls unhealthy is dropped by
// Traefik's Docker provider within its throttle, which the wait lets pass.
package traefik

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/lifecycle"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Container is the Traefik container `shipit setup` runs.
const Container = "traefik"

// APIAddr is where `shipit setup` binds Traefik's API, inside its container.
const APIAddr = "127.0.0.1:8080"

// DefaultThrottle is Traefik's providers throttle when the running Traefik
// does not set one (`providers.providersThrottleDuration`, 2s): how long
// its Docker provider may take to apply a Docker event.
const DefaultThrottle = 2 * time.Second

// throttleMargin is added to the throttle for the event to reach Traefik.
const throttleMargin = time.Second

// Running reports whether the host runs the container `shipit setup` starts.
func Running(ctx context.Context, c remote.Conn) bool {
	out, err := remote.Output(ctx, c, "docker inspect -f '{{.State.Running}}' "+Container+" 2>/dev/null")
	return err == nil && strings.TrimSpace(out) == "true"
}

// throttle is how long to give the host's Traefik to apply a Docker event:
// its providers throttle, read from the traefik container's flags or
// environment (a config file is not read: then the default), plus a margin.
func throttle(ctx context.Context, c remote.Conn) time.Duration {
	out, err := remote.Output(ctx, c, "docker inspect -f '{{json .Args}} {{json .Config.Env}}' "+Container)
	if err != nil {
		return DefaultThrottle + throttleMargin
	}
	return parseThrottle(out) + throttleMargin
}

// parseThrottle finds providers.providersThrottleDuration in docker
// inspect's JSON of a container's args and env (Traefik's flags and
// variables are case-insensitive; a bare number is seconds).
func parseThrottle(inspect string) time.Duration {
	var args, env []string
	a, e, _ := strings.Cut(strings.TrimSpace(inspect), " ")
	_ = json.Unmarshal([]byte(a), &args)
	_ = json.Unmarshal([]byte(e), &env)
	v := ""
	for i, arg := range args { // --flag=value or --flag value
		k, val, ok := strings.Cut(arg, "=")
		if strings.EqualFold(k, "--providers.providersThrottleDuration") {
			if !ok && i+1 < len(args) {
				val = args[i+1]
			}
			v = val
		}
	}
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); strings.EqualFold(k, "TRAEFIK_PROVIDERS_PROVIDERSTHROTTLEDURATION") && v == "" {
			v = val
		}
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d
	}
	return DefaultThrottle
}

// API is Traefik's API, read from inside its container.
type API struct {
	conn remote.Conn
}

// Find returns Traefik's API on the host, or nil when this Traefik has
// none where `shipit setup` puts it (then callers use Docker's view).
func Find(ctx context.Context, c remote.Conn) *API {
	a := &API{conn: c}
	if _, err := a.get(ctx, "/api/version"); err != nil {
		return nil
	}
	return a
}

func (a *API) get(ctx context.Context, p string) (string, error) { return Internal(ctx, a.conn, p) }

// Internal reads path from the entrypoint `shipit setup` binds inside the
// traefik container (its API, and its metrics at /metrics): nothing
// outside that container can reach it.
func Internal(ctx context.Context, c remote.Conn, path string) (string, error) {
	return remote.Output(ctx, c, "docker exec "+Container+" wget -q -O - "+shell.Quote("http://"+APIAddr+path))
}

// Servers returns the server URLs Traefik sends requests to for an HTTP
// service of its Docker provider (nil when it has no such service).
func (a *API) Servers(ctx context.Context, service string) ([]string, error) {
	out, err := a.get(ctx, "/api/http/services?per_page=1000&search="+url.QueryEscape(service))
	if err != nil {
		return nil, fmt.Errorf("traefik API: %w", err)
	}
	var list []struct {
		Name         string `json:"name"`
		LoadBalancer struct {
			Servers []struct{ URL string } `json:"servers"`
		} `json:"loadBalancer"`
		ServerStatus map[string]string `json:"serverStatus"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("traefik API: %w", err)
	}
	for _, svc := range list {
		if svc.Name != service+"@docker" {
			continue
		}
		var urls []string
		for _, s := range svc.LoadBalancer.Servers {
			if st, ok := svc.ServerStatus[s.URL]; ok && st != "UP" {
				continue // Traefik's own health check has it down
			}
			urls = append(urls, s.URL)
		}
		return urls, nil
	}
	return nil, nil
}

// router is a router as Traefik's API shows it: its priority is the
// effective one (the rule's length unless set).
type router struct {
	Name     string   `json:"name"`
	Provider string   `json:"provider"`
	Service  string   `json:"service"`
	Rule     string   `json:"rule"`
	Status   string   `json:"status"`
	Priority int64    `json:"priority"`
	Using    []string `json:"using"`
}

func (a *API) routers(ctx context.Context) ([]router, error) {
	out, err := a.get(ctx, "/api/http/routers?per_page=1000")
	if err != nil {
		return nil, fmt.Errorf("traefik API: %w", err)
	}
	var list []router
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("traefik API: %w", err)
	}
	return list, nil
}

// Yields reports whether Traefik sends no new request to service although
// it lists servers: every router of the service is outranked, on each
// entrypoint it uses, by an enabled router with the same rule, a higher
// priority and servers of its own. That is how a release the original
// shipit started leaves the rotation: its router has Traefik's default
// priority and ours one more (internal/override).
func (a *API) Yields(ctx context.Context, service string) (bool, error) {
	list, err := a.routers(ctx)
	if err != nil {
		return false, err
	}
	mine := 0
	for _, r := range list {
		if r.Provider != "docker" || strings.TrimSuffix(r.Service, "@docker") != service {
			continue
		}
		mine++
		for _, ep := range r.Using {
			if ok, err := a.outranked(ctx, list, r, ep); err != nil || !ok {
				return false, err
			}
		}
	}
	return mine > 0, nil
}

// outranked reports whether another enabled router with r's rule and a
// higher priority, whose service has servers, takes r's requests on ep.
func (a *API) outranked(ctx context.Context, list []router, r router, ep string) (bool, error) {
	for _, o := range list {
		if o.Name == r.Name || o.Status != "enabled" || o.Rule != r.Rule || o.Priority <= r.Priority || !slices.Contains(o.Using, ep) {
			continue
		}
		urls, err := a.Servers(ctx, strings.TrimSuffix(o.Service, "@docker"))
		if err != nil {
			return false, err
		}
		if len(urls) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Backend is one routed container of a release.
type Backend struct {
	ID      string
	Service string // the Traefik service its labels define
	Addr    string // ip:port Traefik sends requests to
	Health  string // Docker's view: healthy, unhealthy, starting, "" without a check
	Running bool
}

// container is what Backends and labelRouters read of `docker inspect`.
type container struct {
	ID     string
	Config struct{ Labels map[string]string }
	State  struct {
		Running bool
		Health  *struct{ Status string }
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

// routedContainers inspects the host's running containers that Traefik's
// Docker provider may route to (traefik.enable=true), narrowed by filters.
func routedContainers(ctx context.Context, c remote.Conn, filters ...string) ([]container, error) {
	args := []string{"--filter", "label=traefik.enable=true"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	out, err := remote.Output(ctx, c, "docker ps -q "+shell.Join(args...))
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = remote.Output(ctx, c, "docker inspect "+shell.Join(ids...))
	if err != nil {
		return nil, err
	}
	var cs []container
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		return nil, fmt.Errorf("host %s: reading docker inspect: %w", c.Name(), err)
	}
	return cs, nil
}

// Backends lists the containers of a compose project that Traefik routes
// to (traefik.enable=true), with their Traefik service and address.
func Backends(ctx context.Context, c remote.Conn, project string) ([]Backend, error) {
	cs, err := routedContainers(ctx, c, "label=com.docker.compose.project="+project)
	if err != nil {
		return nil, err
	}
	var bs []Backend
	for _, ct := range cs {
		b := Backend{ID: ct.ID[:min(12, len(ct.ID))], Running: ct.State.Running}
		if ct.State.Health != nil {
			b.Health = ct.State.Health.Status
		}
		port := ""
		for k, v := range ct.Config.Labels {
			if strings.HasPrefix(k, "traefik.http.services.") && strings.HasSuffix(k, ".loadbalancer.server.port") {
				b.Service = strings.TrimSuffix(strings.TrimPrefix(k, "traefik.http.services."), ".loadbalancer.server.port")
				port = v
			}
		}
		network := ct.Config.Labels["traefik.docker.network"]
		if network == "" {
			network = "traefik"
		}
		if n, ok := ct.NetworkSettings.Networks[network]; ok && n.IPAddress != "" && port != "" {
			b.Addr = net.JoinHostPort(n.IPAddress, port)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// noProxy decides about a host where no Traefik runs: an error when the
// stage has a domain that nothing else is said to route, else a warning.
func noProxy(c remote.Conn, o Options) error {
	if o.Domain != "" && !o.AllowUnrouted {
		return &NoProxyError{Host: c.Name(), Project: o.Project, Domain: o.Domain}
	}
	if o.Logf != nil {
		why := "`shipit setup` runs Traefik; a proxy of your own under another name: ignore this"
		if o.AllowUnrouted {
			why = "allowed by --allow-unrouted / allow_unrouted: requests must reach it another way"
		}
		o.Logf(fmt.Sprintf("WARNING: no running %q container on host %s: nothing may route requests to release %s (%s)",
			Container, c.Name(), o.Project, why))
	}
	return nil
}

// Options tune Drain and WaitRouted.
type Options struct {
	Project string        // the release's compose project
	Dir     string        // the release's directory on the host
	Timeout time.Duration // how long to wait
	Logf    func(string)
	// Domain is the stage's domain: with one set, a host where no Traefik
	// runs cannot route the release, and WaitRouted fails unless
	// AllowUnrouted (--allow-unrouted, [stages.NAME.traefik]
	// allow_unrouted) says requests reach it another way.
	Domain        string
	AllowUnrouted bool
}

// NoProxyError is a release whose domain nothing on the host can route:
// no Traefik runs there.
type NoProxyError struct {
	Host, Project, Domain string
}

func (e *NoProxyError) Error() string {
	return fmt.Sprintf("host %s: no %q container runs on the host: nothing routes %s to release %s", e.Host, Container, e.Domain, e.Project)
}

func (e *NoProxyError) Hint() string {
	return "run `shipit setup -s STAGE` to start Traefik on the host; if a proxy of your own routes this domain, " +
		"deploy with --allow-unrouted or set allow_unrouted = true under [stages.NAME.traefik]; the previous release keeps serving"
}

// NotRoutedError is a new release Traefik did not route to in time.
type NotRoutedError struct {
	Host, Project, Why string
	Timeout            time.Duration
}

func (e *NotRoutedError) Error() string {
	return fmt.Sprintf("host %s: Traefik did not route to release %s within %s: %s", e.Host, e.Project, e.Timeout, e.Why)
}

func (e *NotRoutedError) Hint() string {
	return "the new release is healthy but Traefik does not send it requests: check the traefik container (`docker logs traefik`), " +
		"that the web service joins the traefik network, and [stages.NAME.traefik] domain; the previous release keeps serving"
}

// WaitRouted waits until Traefik sends requests to every routed container
// of the release: each container's address is a server of its service, as
// internal/lifecycle asks Traefik's API on the host (one command, polling
// there). Without the API it waits for Traefik's provider throttle after
// Docker calls the containers healthy.
func WaitRouted(ctx context.Context, c remote.Conn, o Options) error {
	r := lifecycle.Runner{Conn: c, AppPath: o.Dir}
	res, why, err := r.WaitRouted(ctx, lifecycle.Settings{RouteTimeout: o.Timeout}, o.Project)
	if err != nil {
		return err
	}
	switch res {
	case lifecycle.Routed, lifecycle.NoRoutes:
		return nil
	case lifecycle.NoAPI:
		if !Running(ctx, c) {
			if err := noProxy(c, o); err != nil {
				return err
			}
		}
		return sleep(ctx, throttle(ctx, c))
	default:
		return &NotRoutedError{Host: c.Name(), Project: o.Project, Why: why, Timeout: o.Timeout}
	}
}

// Foreign modes: how internal/lifecycle's drain treats a release without
// a drain marker (lifecycle.Foreign).
const (
	ForeignNone   = ""       // stop it without a drain
	ForeignWait   = "wait"   // its probe now fails: wait until Traefik drops it
	ForeignYields = "yields" // Traefik sends it nothing new already
)

// PrepareForeign readies the drain of a release the original shipit
// started, which has no drain marker (internal/lifecycle drains it). Its
// router has Traefik's default priority and ours one more: once the new
// release is routed, Traefik sends the old one nothing new (API.Yields;
// without Traefik's API, read from the containers' labels, then given
// Traefik's throttle) and it is out of rotation already. Otherwise (its
// router on another entrypoint, say) its health check (curl or wget) is
// made to fail, by copying failing `curl` and `wget` into the first
// directory of the container's PATH (which a shell that runs busybox
// applets directly does not consult); its own interval and retries then
// decide how long the drain takes. msg says why it cannot be drained.
func PrepareForeign(ctx context.Context, c remote.Conn, project string) (mode, msg string, err error) {
	bs, err := Backends(ctx, c, project)
	if err != nil || len(bs) == 0 {
		return ForeignNone, "", err
	}
	api := Find(ctx, c)
	if yields(ctx, c, api, project, bs) {
		if api == nil {
			if err := sleep(ctx, throttle(ctx, c)); err != nil {
				return "", "", err
			}
		}
		return ForeignYields, "", nil
	}
	for _, b := range bs {
		if err := failProbe(ctx, c, b.ID); err != nil {
			return ForeignNone, fmt.Sprintf("cannot drain %s (%v): stopping it without a drain", project, err), nil
		}
	}
	return ForeignWait, "", nil
}

// yields reports whether Traefik sends the project's containers bs no new
// request because routers of another release outrank theirs: from the API
// when there is one (API.Yields), else from the containers' labels (which
// Traefik's provider applies within its throttle, waited for after).
func yields(ctx context.Context, c remote.Conn, api *API, project string, bs []Backend) bool {
	if api == nil {
		rs, err := labelRouters(ctx, c)
		return err == nil && outrankedByLabels(rs, project)
	}
	for _, b := range bs {
		if ok, err := api.Yields(ctx, b.Service); err != nil || !ok {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// failProbe makes the container's HTTP health probe fail: failing `curl`
// and `wget` scripts go first in its PATH (the container is stopped and
// removed right after; its image is untouched).
func failProbe(ctx context.Context, c remote.Conn, id string) error {
	out, err := remote.Output(ctx, c, "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "+shell.Quote(id))
	if err != nil {
		return err
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "PATH="); ok {
			pathEnv = v
		}
	}
	archive := shimTar()
	var lastErr error
	for _, dir := range strings.Split(pathEnv, ":") {
		if !strings.HasPrefix(dir, "/") {
			continue
		}
		var errb bytes.Buffer
		code, err := c.Run(ctx, "docker cp - "+shell.Quote(id+":"+dir), bytes.NewReader(archive), io.Discard, &errb)
		if err != nil {
			return err
		}
		if code == 0 {
			return nil
		}
		lastErr = fmt.Errorf("docker cp into %s: %s", dir, strings.TrimSpace(errb.String()))
	}
	return lastErr
}

// shimTar is a tar of `curl` and `wget` that always fail.
func shimTar() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("#!/bin/sh\n# shipit: draining this container out of Traefik's rotation\nexit 1\n")
	for _, name := range []string{"curl", "wget"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}
