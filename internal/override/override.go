// Package override generates the docker-compose.override.yml of one release
// (deploy step 4, deploy:override): Traefik labels and network for the web
// service, its health check, shipit's bookkeeping labels, the shared env
// file, and image: lines for images built locally.
//
// The output is plain YAML written by hand: every string (keys included)
// is a double-quoted JSON string, so no value from shipit.toml or the
// base compose file can change the document's structure, and every '$' is
// doubled so Compose's variable interpolation leaves values untouched. No
// `version:` key is written: Compose v1 (1.27+) and v2 both accept a file
// without one next to a base file with or without it.
//
// Decisions:
//   - Every service of the base file gets the bookkeeping labels
//     shipit.app, shipit.release and shipit.stage, and env_file: [EnvFile]
//     (the app's .env is shared by all its services).
//   - The web service joins the external network "traefik" and "default"
//     (so it still reaches its sibling services).
//   - If the base web service publishes host ports, they would collide
//     between the old and new release during a deploy and bypass Traefik:
//     on Compose v2 they are removed with `ports: !reset []`; Compose v1 has
//     no such tag, so Generate returns an *Error instead.
//   - A service with container_name is an error: the old and the new
//     release run side by side during a deploy, and names are global.
//   - The health check is exec form (no shell in the image): shipit's
//     static probe (internal/probe), which the recipe links into the
//     release's .shipit-run directory, probes http://127.0.0.1:PORT/PATH or
//     runs health_check.cmd (health.Settings.Test).
//   - Draining: the web service mounts the release's .shipit-run directory
//     read-only at /run/shipit, and the probe fails while /run/shipit/drain
//     exists. shipit creates that file on the host (no docker exec, nothing
//     needed in the image) to take a release out of Traefik's rotation
//     before stopping it: Traefik's Docker provider drops containers that
//     are not healthy.
//   - Routing names: the service is <app>-<stage>, so old and new releases
//     join one Traefik service during a deploy (their ports may differ: the
//     port is part of each server's URL). The router is named after the app,
//     the stage and a hash of its configuration: releases that route alike
//     share it, and a deploy that changes the domain or TLS gets a second
//     router next to the old one, instead of one that Traefik would disable
//     for being defined two ways.
//   - Router priority: one above Traefik's default for the same rule (the
//     rule's length), so that a router with the very same rule defined
//     elsewhere (the original shipit's, during a takeover) yields to ours
//     as soon as ours has a server, while longer, more specific rules of
//     other apps still win.
package override

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/compose"
	"github.com/shipit-dev/shipit/internal/health"
	"github.com/shipit-dev/shipit/internal/probe"
)

// Params describe one release.
type Params struct {
	App, Stage, Release string
	WebService          string // default "web"

	ComposeV1 bool // the remote uses docker-compose v1 (no !reset tag support)

	Domain       string // Traefik Host rule; "" -> no rule label
	TLS          bool   // websecure entrypoint + certresolver, else web
	CertResolver string // default "letsencrypt"

	// Health is the app's health settings: the web service's Docker health
	// check (shipit's probe, see internal/probe) and Traefik's server port.
	Health health.Settings

	EnvFile string // e.g. ".env" (the release's symlink to shared/.env); "" -> no env_file

	Images map[string]string // service -> image ref (local build mode): emit image: for them

	BaseCompose []byte // the release's docker-compose.yml
}

// Error is a problem that stops the override from being generated.
type Error struct {
	Msg      string
	HintText string
}

func (e *Error) Error() string { return "docker-compose.override.yml: " + e.Msg }

// Hint suggests the fix.
func (e *Error) Hint() string { return e.HintText }

// Defaults for zero Params fields.
const (
	DefaultWebService   = "web"
	DefaultCertResolver = "letsencrypt"
	TraefikNetwork      = "traefik"
	// FileName is the override's name in each release.
	FileName = "docker-compose.override.yml"
	// RunDir is the release's directory the web service sees at
	// probe.Mount: it holds the probe and, while draining, the marker.
	RunDir = probe.RunDir
)

// EnsureNetworkCmd creates the external "traefik" network the override
// declares, unless it exists; safe to run concurrently from several hosts
// sharing an engine. Compose refuses to start a release without it
// ("network traefik declared as external, but could not be found"), so the
// recipe runs this on each host before `compose up`.
const EnsureNetworkCmd = "docker network inspect " + TraefikNetwork + " >/dev/null 2>&1 || " +
	"docker network create " + TraefikNetwork + " >/dev/null 2>&1 || " +
	"docker network inspect " + TraefikNetwork + " >/dev/null"

var reName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// service is what we need to know about a service of the base file.
type service struct {
	publishes     bool     // has a non-empty ports: list
	ports         []string // as written
	networkMode   string
	containerName string
}

// Generate returns the override file for p. Errors are *Error.
func Generate(p Params) ([]byte, error) {
	out, _, err := GenerateWithNotes(p)
	return out, err
}

// CheckBase reports what makes a compose file undeployable whatever the
// host: no such web service, a container_name, a web service with
// network_mode. `deploy --plan` runs it on this machine, deploy:override
// on the release.
func CheckBase(base []byte, webService string) error {
	if webService == "" {
		webService = DefaultWebService
	}
	_, _, err := checkBase(base, webService)
	return err
}

func checkBase(base []byte, webService string) (map[string]service, []string, error) {
	services, order, err := parseBase(base)
	if err != nil {
		return nil, nil, err
	}
	web, ok := services[webService]
	if !ok {
		return nil, nil, &Error{
			Msg: fmt.Sprintf("the web service %q is not defined in docker-compose.yml (services: %s)", webService, strings.Join(order, ", ")),
			HintText: "set deploy.web_service in shipit.toml to the service that serves HTTP, " +
				"or rename that service in docker-compose.yml",
		}
	}
	for _, name := range order {
		if cn := services[name].containerName; cn != "" {
			return nil, nil, &Error{
				Msg: fmt.Sprintf("service %q sets container_name: %s in docker-compose.yml; the new release starts "+
					"next to the old one during a deploy, and two containers cannot have the same name", name, cn),
				HintText: fmt.Sprintf("remove container_name from the %q service (Compose names containers after the project)", name),
			}
		}
	}
	if web.networkMode != "" {
		return nil, nil, &Error{
			Msg:      fmt.Sprintf("the web service %q sets network_mode: %s, so it cannot join the traefik network", webService, web.networkMode),
			HintText: "remove network_mode from the web service in docker-compose.yml",
		}
	}
	return services, order, nil
}

// GenerateWithNotes is Generate, plus what the override changed that the
// user should hear of at deploy time (published ports it removed).
func GenerateWithNotes(p Params) ([]byte, []string, error) {
	p = withDefaults(p)
	if err := check(p); err != nil {
		return nil, nil, err
	}
	services, order, err := checkBase(p.BaseCompose, p.WebService)
	if err != nil {
		return nil, nil, err
	}
	web := services[p.WebService]
	if web.publishes && p.ComposeV1 {
		return nil, nil, &Error{
			Msg: fmt.Sprintf("the web service %q publishes host ports in docker-compose.yml; they would collide between "+
				"the old and the new release during a deploy and bypass Traefik, and docker-compose v1 on this host cannot "+
				"remove them in the override (no !reset tag)", p.WebService),
			HintText: fmt.Sprintf("remove ports: from the %q service in docker-compose.yml (Traefik routes to it), "+
				"or install the Docker Compose v2 plugin on the host", p.WebService),
		}
	}
	imgs := make([]string, 0, len(p.Images))
	for s := range p.Images {
		if _, ok := services[s]; !ok {
			return nil, nil, &Error{Msg: fmt.Sprintf("image given for service %q, which docker-compose.yml does not define (services: %s)", s, strings.Join(order, ", "))}
		}
		if p.Images[s] == "" {
			return nil, nil, &Error{Msg: fmt.Sprintf("empty image reference for service %q", s)}
		}
		imgs = append(imgs, s)
	}

	router, service := RouteNames(p)
	var b bytes.Buffer
	var notes []string
	// App and stage are checked names; the release is quoted ASCII so that
	// no line break can end the comment.
	fmt.Fprintf(&b, "# Generated by shipit for %s, stage %s, release %s. Do not edit: it is rewritten on every deploy.\n",
		p.App, p.Stage, strconv.QuoteToASCII(p.Release))
	b.WriteString("services:\n")
	for _, name := range order {
		fmt.Fprintf(&b, "  %s:\n", q(name))
		if img, ok := p.Images[name]; ok {
			fmt.Fprintf(&b, "    image: %s\n", q(img))
		}
		if p.EnvFile != "" {
			fmt.Fprintf(&b, "    env_file:\n      - %s\n", q(p.EnvFile))
		}
		b.WriteString("    labels:\n")
		labels := [][2]string{
			{"shipit.app", p.App},
			{"shipit.release", p.Release},
			{"shipit.stage", p.Stage},
		}
		if name == p.WebService {
			labels = append(labels, [2]string{"traefik.enable", "true"})
			if p.Domain != "" {
				rule := hostRule(p.Domain)
				labels = append(labels,
					[2]string{"traefik.http.routers." + router + ".rule", rule},
					[2]string{"traefik.http.routers." + router + ".priority", strconv.Itoa(len(rule) + 1)})
			}
			if p.TLS {
				labels = append(labels,
					[2]string{"traefik.http.routers." + router + ".entrypoints", "websecure"},
					[2]string{"traefik.http.routers." + router + ".tls", "true"},
					[2]string{"traefik.http.routers." + router + ".tls.certresolver", p.CertResolver})
			} else {
				labels = append(labels, [2]string{"traefik.http.routers." + router + ".entrypoints", "web"})
			}
			labels = append(labels,
				[2]string{"traefik.http.routers." + router + ".service", service},
				[2]string{"traefik.http.services." + service + ".loadbalancer.server.port", strconv.Itoa(p.Health.Port)},
				[2]string{"traefik.docker.network", TraefikNetwork})
		}
		for _, l := range labels {
			fmt.Fprintf(&b, "      %s: %s\n", q(l[0]), q(l[1]))
		}
		if name != p.WebService {
			continue
		}
		fmt.Fprintf(&b, "    networks:\n      %s: {}\n      %s: {}\n", q("default"), q(TraefikNetwork))
		fmt.Fprintf(&b, "    volumes:\n      - %s\n", q("./"+RunDir+":"+probe.Mount+":ro"))
		b.WriteString("    healthcheck:\n")
		test := p.Health.Test()
		words := make([]string, len(test))
		for i, w := range test {
			words[i] = q(w)
		}
		fmt.Fprintf(&b, "      test: [%s]\n", strings.Join(words, ", "))
		fmt.Fprintf(&b, "      interval: %s\n      timeout: %s\n      retries: %d\n      start_period: %s\n",
			q(duration(p.Health.Interval)), q(duration(p.Health.ProbeTimeout)), p.Health.UnhealthyAfter, q(duration(p.Health.StartPeriod())))
		if web.publishes {
			b.WriteString("    ports: !reset []\n")
			notes = append(notes, fmt.Sprintf("the web service %q publishes %s in docker-compose.yml: the override removes them "+
				"(they would collide between the old and the new release during a deploy, and bypass Traefik); "+
				"reach the app through Traefik", p.WebService, strings.Join(web.ports, ", ")))
		}
	}
	fmt.Fprintf(&b, "networks:\n  %s:\n    external: true\n    name: %s\n", q(TraefikNetwork), q(TraefikNetwork))
	return b.Bytes(), notes, nil
}

// duration writes d for Compose (v1 and v2 read "2s" and "500ms").
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// RouteNames returns the Traefik router and service names of p's web
// service: the service <app>-<stage>, the router <app>-<stage>-<hash of
// its configuration>, so that two releases share the router exactly when
// they route alike.
func RouteNames(p Params) (router, service string) {
	p = withDefaults(p)
	service = p.App + "-" + p.Stage
	// (The priority is part of the routing: releases from before it had
	// another router, not one defined two ways.)
	router = service + "-" + shortHash(fmt.Sprintf("domain=%s tls=%t resolver=%s priority=len+1", p.Domain, p.TLS, p.CertResolver))
	return router, service
}

// hostRule is the Traefik rule of a domain.
func hostRule(domain string) string { return "Host(`" + domain + "`)" }

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

func withDefaults(p Params) Params {
	if p.WebService == "" {
		p.WebService = DefaultWebService
	}
	if p.CertResolver == "" {
		p.CertResolver = DefaultCertResolver
	}
	return p
}

func check(p Params) error {
	for _, f := range []struct{ name, v string }{{"app", p.App}, {"stage", p.Stage}} {
		if !reName.MatchString(f.v) {
			return &Error{Msg: fmt.Sprintf("invalid %s name %q (it is part of the Traefik router name)", f.name, f.v),
				HintText: "use lowercase letters, digits, '-' and '_'"}
		}
	}
	if p.Release == "" {
		return &Error{Msg: "no release name"}
	}
	h := p.Health
	if h.Port < 1 || h.Port > 65535 {
		return &Error{Msg: fmt.Sprintf("port %d is out of range", h.Port)}
	}
	if h.HTTP() && !strings.HasPrefix(h.Path, "/") {
		return &Error{Msg: fmt.Sprintf("health check path %q must start with /", h.Path)}
	}
	if h.UnhealthyAfter < 1 || h.Retries < 1 {
		return &Error{Msg: fmt.Sprintf("health check unhealthy_after and retries must be at least 1, got %d and %d", h.UnhealthyAfter, h.Retries)}
	}
	if h.Interval <= 0 || h.ProbeTimeout <= 0 {
		return &Error{Msg: fmt.Sprintf("health check interval and probe_timeout must be positive, got %s and %s", h.Interval, h.ProbeTimeout)}
	}
	if strings.ContainsAny(p.Domain, "`\n\r\t ") {
		return &Error{Msg: fmt.Sprintf("invalid domain %q", p.Domain), HintText: "use one host name such as app.example.com"}
	}
	return nil
}

// parseBase returns the services of a compose file, and their names sorted.
func parseBase(data []byte) (map[string]service, []string, error) {
	proj, err := compose.Parse(data)
	if err != nil {
		return nil, nil, &Error{Msg: "cannot parse docker-compose.yml: " + err.Error(),
			HintText: "check it with `docker compose config` in the project directory"}
	}
	if len(proj.Services) == 0 {
		return nil, nil, &Error{Msg: "docker-compose.yml defines no services",
			HintText: "shipit deploys a Compose app: define the web service under services:"}
	}
	out := make(map[string]service, len(proj.Services))
	for name, s := range proj.Services {
		sv := service{publishes: s.Publishes(), networkMode: s.NetworkMode, containerName: s.ContainerName}
		for _, p := range s.Ports {
			sv.ports = append(sv.ports, fmt.Sprint(p))
		}
		out[name] = sv
	}
	return out, proj.Order, nil
}

// q quotes s as a YAML double-quoted scalar (JSON string syntax, a subset
// of YAML's), with '$' doubled against Compose interpolation.
func q(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(strings.ReplaceAll(s, "$", "$$"))
	return strings.TrimSuffix(b.String(), "\n")
}
