package override

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/health"
)

const base = `services:
  web:
    build: .
    environment:
      RAILS_ENV: production
  worker:
    build: .
    command: ["bin/worker"]
  db:
    image: postgres:16
    ports: ["5432:5432"]
`

const basePorts = `services:
  web:
    build: .
    ports:
      - "8080:80"
  db:
    image: postgres:16
`

type svc struct {
	Image       string            `yaml:"image"`
	EnvFile     []string          `yaml:"env_file"`
	Labels      map[string]string `yaml:"labels"`
	Networks    map[string]any    `yaml:"networks"`
	Ports       []any             `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

type doc struct {
	Services map[string]svc `yaml:"services"`
	Networks map[string]struct {
		External bool   `yaml:"external"`
		Name     string `yaml:"name"`
	} `yaml:"networks"`
	Version *string `yaml:"version"`
}

func parse(t *testing.T, out []byte) doc {
	t.Helper()
	var d doc
	if err := yaml.UnmarshalWithOptions(out, &d, yaml.Strict()); err != nil {
		t.Fatalf("generated YAML does not parse: %v\n%s", err, out)
	}
	return d
}

func gen(t *testing.T, p Params) []byte {
	t.Helper()
	out, err := Generate(p)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return out
}

func params() Params {
	return Params{App: "shop", Stage: "production", Release: "20250219-140000", Domain: "shop.example.com",
		TLS: true, EnvFile: ".env", BaseCompose: []byte(base), Health: testHealth(8080, "/health")}
}

// testHealth is the health settings of shipit.toml's defaults, on port and
// path.
func testHealth(port int, path string) health.Settings {
	c, err := config.Parse([]byte("[app]\nname = \"shop\"\n[stages.production]\nhosts = [{ address = \"h\" }]\n"), "shipit.toml")
	if err != nil {
		panic(err)
	}
	s := health.FromConfig(c)
	s.Port, s.Path = port, path
	return s
}

func TestStructure(t *testing.T) {
	out := gen(t, params())
	d := parse(t, out)
	if d.Version != nil {
		t.Errorf("version key written: %q", *d.Version)
	}
	if got := len(d.Services); got != 3 {
		t.Fatalf("services = %d, want 3:\n%s", got, out)
	}
	for name, s := range d.Services {
		for k, v := range map[string]string{"shipit.app": "shop", "shipit.release": "20250219-140000", "shipit.stage": "production"} {
			if s.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", name, k, s.Labels[k], v)
			}
		}
		if !reflect.DeepEqual(s.EnvFile, []string{".env"}) {
			t.Errorf("%s: env_file = %q", name, s.EnvFile)
		}
		if s.Image != "" {
			t.Errorf("%s: image %q without Images", name, s.Image)
		}
		if name != "web" {
			if s.Healthcheck != nil || s.Networks != nil || hasTraefik(s.Labels) || s.Ports != nil {
				t.Errorf("%s: has web-only settings: %+v", name, s)
			}
		}
	}
	web := d.Services["web"]
	r, sv := RouteNames(params())
	want := map[string]string{
		"shipit.app":                          "shop",
		"shipit.release":                      "20250219-140000",
		"shipit.stage":                        "production",
		"traefik.enable":                      "true",
		"traefik.http.routers." + r + ".rule": "Host(`shop.example.com`)",
		// one above Traefik's default, the rule's length (24)
		"traefik.http.routers." + r + ".priority":                   "25",
		"traefik.http.routers." + r + ".entrypoints":                "websecure",
		"traefik.http.routers." + r + ".tls":                        "true",
		"traefik.http.routers." + r + ".tls.certresolver":           "letsencrypt",
		"traefik.http.routers." + r + ".service":                    sv,
		"traefik.http.services." + sv + ".loadbalancer.server.port": "8080",
		"traefik.docker.network":                                    "traefik",
	}
	if !strings.HasPrefix(r, "shop-production-") || sv != "shop-production" {
		t.Errorf("route names %q %q", r, sv)
	}
	if !reflect.DeepEqual(web.Volumes, []string{"./.shipit-run:/run/shipit:ro"}) {
		t.Errorf("web volumes = %q", web.Volumes)
	}
	if !reflect.DeepEqual(web.Labels, want) {
		t.Errorf("web labels:\n got %v\nwant %v", web.Labels, want)
	}
	if _, ok := web.Networks["traefik"]; !ok {
		t.Errorf("web networks = %v", web.Networks)
	}
	if _, ok := web.Networks["default"]; !ok || len(web.Networks) != 2 {
		t.Errorf("web networks = %v", web.Networks)
	}
	if n := d.Networks["traefik"]; !n.External || n.Name != "traefik" || len(d.Networks) != 1 {
		t.Errorf("networks = %+v", d.Networks)
	}
	// shipit's probe in exec form (no shell in the image), the drain marker
	// first; shipit.toml's defaults: start period = interval x retries.
	hc := web.Healthcheck
	wantTest := []string{"CMD", "/run/shipit/probe", "-drain", "/run/shipit/drain", "-timeout", "5000", "http", "http://127.0.0.1:8080/health"}
	if hc == nil || !reflect.DeepEqual(hc.Test, wantTest) ||
		hc.Interval != "2s" || hc.Timeout != "5s" || hc.Retries != 3 || hc.StartPeriod != "30s" {
		t.Errorf("healthcheck = %+v, want test %q, 2s, 5s, 3, 30s", hc, wantTest)
	}
	if web.Ports != nil {
		t.Errorf("ports written although the base publishes none: %v", web.Ports)
	}
	if bytes.Contains(out, []byte("!reset")) {
		t.Errorf("!reset without published ports:\n%s", out)
	}
}

func hasTraefik(l map[string]string) bool {
	for k := range l {
		if strings.HasPrefix(k, "traefik.") {
			return true
		}
	}
	return false
}

func TestOptions(t *testing.T) {
	p := params()
	p.Domain, p.TLS = "", false
	p.WebService = "worker"
	p.Health.Port, p.Health.Path = 3000, "/up"
	p.Health.Interval, p.Health.ProbeTimeout, p.Health.UnhealthyAfter, p.Health.Retries = 500*time.Millisecond, 90*time.Second, 4, 60
	p.EnvFile = ""
	p.Images = map[string]string{"web": "shop-web:20250219-140000", "worker": "registry.local:5000/shop/worker@sha256:abc"}
	d := parse(t, gen(t, p))
	w := d.Services["worker"]
	r, sv := RouteNames(p)
	if _, ok := w.Labels["traefik.http.routers."+r+".rule"]; ok {
		t.Error("rule label without a domain")
	}
	if w.Labels["traefik.http.routers."+r+".entrypoints"] != "web" || hasKey(w.Labels, "tls.certresolver") {
		t.Errorf("labels = %v", w.Labels)
	}
	if w.Labels["traefik.http.services."+sv+".loadbalancer.server.port"] != "3000" {
		t.Errorf("port label = %v", w.Labels)
	}
	if hc := w.Healthcheck; hc == nil || hc.Test[len(hc.Test)-1] != "http://127.0.0.1:3000/up" ||
		hc.Interval != "500ms" || hc.Timeout != "90s" || hc.Retries != 4 || hc.StartPeriod != "30s" {
		t.Errorf("healthcheck = %+v", w.Healthcheck)
	}
	if d.Services["web"].Healthcheck != nil || hasTraefik(d.Services["web"].Labels) {
		t.Error("web is not the web service here")
	}
	for name, s := range d.Services {
		if s.EnvFile != nil {
			t.Errorf("%s: env_file with EnvFile empty", name)
		}
		if s.Image != p.Images[name] {
			t.Errorf("%s: image = %q, want %q", name, s.Image, p.Images[name])
		}
	}

	p = params()
	p.Health.Shell = `pg_isready -U "$POSTGRES_USER" && test -f '/tmp/ok'`
	p.CertResolver = "myresolver"
	out := gen(t, p)
	d = parse(t, out)
	web := d.Services["web"]
	// '$' is doubled for Compose, which turns it back into '$' for the shell.
	// The drain marker is checked first; the user's command runs as written,
	// with the image's shell.
	want := []string{"CMD", "/run/shipit/probe", "-drain", "/run/shipit/drain", "exec", "/bin/sh", "-c", strings.ReplaceAll(p.Health.Shell, "$", "$$")}
	if got := web.Healthcheck.Test; !reflect.DeepEqual(got, want) {
		t.Errorf("test = %q, want %q", got, want)
	}
	// Exec form: the image's own probe, no shell.
	p.Health.Shell, p.Health.Exec = "", []string{"/app", "-healthcheck", "$x"}
	want = []string{"CMD", "/run/shipit/probe", "-drain", "/run/shipit/drain", "exec", "/app", "-healthcheck", "$$x"}
	if got := parse(t, gen(t, p)).Services["web"].Healthcheck.Test; !reflect.DeepEqual(got, want) {
		t.Errorf("exec test = %q, want %q", got, want)
	}
	r, _ = RouteNames(p)
	if web.Labels["traefik.http.routers."+r+".tls.certresolver"] != "myresolver" {
		t.Errorf("labels = %v", web.Labels)
	}
}

func hasKey(m map[string]string, suffix string) bool {
	for k := range m {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

func TestResetPorts(t *testing.T) {
	p := params()
	p.BaseCompose = []byte(basePorts)
	out := gen(t, p)
	path, err := yaml.PathString("$.services.web.ports")
	if err != nil {
		t.Fatal(err)
	}
	n, err := path.ReadNode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("ports: %v\n%s", err, out)
	}
	tag, ok := n.(*ast.TagNode)
	if !ok || tag.Start.Value != "!reset" {
		t.Fatalf("services.web.ports is %T %v, want a !reset tag\n%s", n, n, out)
	}
	if seq, ok := tag.Value.(*ast.SequenceNode); !ok || len(seq.Values) != 0 {
		t.Errorf("!reset value = %v", tag.Value)
	}
	// Only the web service: the db's ports are the user's business.
	if d := parse(t, out); d.Services["db"].Ports != nil {
		t.Errorf("db ports touched")
	}
}

func TestComposeV1PortsError(t *testing.T) {
	p := params()
	p.BaseCompose = []byte(basePorts)
	p.ComposeV1 = true
	_, err := Generate(p)
	var oe *Error
	if !errors.As(err, &oe) {
		t.Fatalf("err = %T %v", err, err)
	}
	for _, s := range []string{`"web" publishes host ports`, "collide", "Traefik", "v1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if h := oe.Hint(); !strings.Contains(h, "remove ports:") || !strings.Contains(h, "Compose v2 plugin") {
		t.Errorf("hint %q", h)
	}
	// Without published ports v1 is fine.
	p.BaseCompose = []byte(base)
	if _, err := Generate(p); err != nil {
		t.Errorf("v1 without ports: %v", err)
	}
	// Anchors and merge keys are resolved before looking at ports.
	p.BaseCompose = []byte("x-web: &w\n  ports: ['80:80']\nservices:\n  web:\n    <<: *w\n    image: nginx\n")
	if _, err := Generate(p); !errors.As(err, &oe) {
		t.Errorf("ports through a merge key not seen: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Params)
		want string
	}{
		{"missing web service", func(p *Params) { p.WebService = "app" }, `the web service "app" is not defined in docker-compose.yml (services: db, web, worker)`},
		{"no services", func(p *Params) { p.BaseCompose = []byte("volumes: {}\n") }, "defines no services"},
		{"bad yaml", func(p *Params) { p.BaseCompose = []byte("services: [\n") }, "cannot parse docker-compose.yml"},
		{"unknown image service", func(p *Params) { p.Images = map[string]string{"api": "x"} }, `service "api"`},
		{"network_mode", func(p *Params) { p.BaseCompose = []byte("services:\n  web:\n    network_mode: host\n") }, "network_mode"},
		{"container_name", func(p *Params) {
			p.BaseCompose = []byte("services:\n  web:\n    image: a\n  db:\n    image: b\n    container_name: shop-db\n")
		}, `service "db" sets container_name`},
		{"bad app", func(p *Params) { p.App = "Shop" }, "invalid app name"},
		{"bad stage", func(p *Params) { p.Stage = "a.b" }, "invalid stage name"},
		{"no release", func(p *Params) { p.Release = "" }, "no release"},
		{"bad interval", func(p *Params) { p.Health.Interval = 0 }, "interval"},
		{"bad path", func(p *Params) { p.Health.Path = "up" }, "must start with /"},
		{"domain newline", func(p *Params) { p.Domain = "a.com\n    privileged: true" }, "invalid domain"},
		{"domain backtick", func(p *Params) { p.Domain = "a.com`) || Host(`b.com" }, "invalid domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			tc.mod(&p)
			_, err := Generate(p)
			var oe *Error
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want *Error containing %q", err, tc.want)
			}
		})
	}
}

func TestInjection(t *testing.T) {
	evil := "x\"\n    privileged: true\n  evil:\n    image: 'x' # $HOME ${X} \\ \u2028 :"
	p := params()
	p.Domain = `a-"quoted"-'single'.example.com#frag:x`
	p.Release = evil
	p.EnvFile = evil
	p.Health.Path = "/health?a='b'&c=\"d\" $(touch /tmp/pwned) `id`"
	p.Images = map[string]string{"web": evil}
	p.BaseCompose = []byte("services:\n  web:\n    image: a\n  \"we ird: svc\\\"\":\n    image: b\n")
	out := gen(t, p)
	d := parse(t, out)
	if len(d.Services) != 2 {
		t.Fatalf("services = %v\n%s", reflect.ValueOf(d.Services).MapKeys(), out)
	}
	web := d.Services["web"]
	unescape := func(s string) string { return strings.ReplaceAll(s, "$$", "$") }
	if got := unescape(web.Labels["shipit.release"]); got != evil {
		t.Errorf("release label = %q", got)
	}
	if got := unescape(web.Image); got != evil {
		t.Errorf("image = %q", got)
	}
	if got := unescape(web.EnvFile[0]); got != evil {
		t.Errorf("env_file = %q", got)
	}
	r, _ := RouteNames(p)
	if got := web.Labels["traefik.http.routers."+r+".rule"]; got != "Host(`"+p.Domain+"`)" {
		t.Errorf("rule = %q", got)
	}
	if got := unescape(web.Healthcheck.Test[len(web.Healthcheck.Test)-1]); got != "http://127.0.0.1:8080"+p.Health.Path {
		t.Errorf("probed URL = %q (one word of an exec-form check: no shell sees it)", got)
	}
	if _, ok := d.Services["we ird: svc\""]; !ok {
		t.Errorf("odd service name lost: %v", reflect.ValueOf(d.Services).MapKeys())
	}
	if bytes.Contains(out, []byte("\nprivileged")) || bytes.Contains(out, []byte("\n    privileged")) {
		t.Errorf("injection reached the structure:\n%s", out)
	}
}

// Releases that route alike share the router and the service; a new domain
// is a new router on the same service, and so is nothing else: a new port
// stays in the service (ports are part of the server URLs).
func TestRouteNamesAreStableAcrossReleases(t *testing.T) {
	a := params()
	b := params()
	b.Release = "20990101-000000"
	ra, sa := RouteNames(a)
	rb, sb := RouteNames(b)
	if ra != rb || sa != sb {
		t.Fatalf("same routing, different names: %s %s / %s %s", ra, sa, rb, sb)
	}
	c := params()
	c.Domain = "new.example.com"
	rc, sc := RouteNames(c)
	if rc == ra || sc != sa {
		t.Fatalf("domain change: router %s (was %s), service %s (was %s)", rc, ra, sc, sa)
	}
	d := params()
	d.Health.Port = 9000
	rd, sd := RouteNames(d)
	if sd != sa || rd != ra {
		t.Fatalf("port change: router %s service %s, want both unchanged", rd, sd)
	}
}

// Published ports of the web service are removed on Compose v2, and said.
func TestNotesSayRemovedPorts(t *testing.T) {
	p := params()
	p.BaseCompose = []byte(basePorts)
	_, notes, err := GenerateWithNotes(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `the web service "web" publishes 8080:80`) || !strings.Contains(notes[0], "the override removes them") {
		t.Errorf("notes = %q", notes)
	}
	p.BaseCompose = []byte(base)
	if _, notes, _ := GenerateWithNotes(p); len(notes) != 0 {
		t.Errorf("notes without published ports: %q", notes)
	}
}
