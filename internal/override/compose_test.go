package override

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/shipit-dev/shipit/internal/probe"
)

// composeCLIs finds the Compose implementations on this machine: `docker
// compose` (v2 plugin) and `docker-compose` (v1). Only the CLI is needed:
// `config` does not talk to the engine.
func composeCLIs(t *testing.T) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	if docker, err := exec.LookPath("docker"); err == nil {
		if out, err := exec.Command(docker, "compose", "version", "--short").Output(); err == nil &&
			strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "2") {
			found["v2"] = []string{docker, "compose"}
		}
	}
	if dc, err := exec.LookPath("docker-compose"); err == nil {
		if out, err := exec.Command(dc, "version", "--short").Output(); err == nil &&
			strings.HasPrefix(strings.TrimSpace(string(out)), "1.") {
			found["v1"] = []string{dc}
		}
	}
	if len(found) == 0 {
		t.Fatal("neither `docker compose` (v2) nor `docker-compose` (v1) is installed: cannot prove Compose accepts the override")
	}
	return found
}

type rendered struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Labels      map[string]string `yaml:"labels"`
		Environment map[string]string `yaml:"environment"`
		Networks    map[string]any    `yaml:"networks"`
		Ports       []any             `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Volumes []any `yaml:"volumes"` // v2: long form; v1: "src:dst:ro"
	} `yaml:"services"`
	Networks map[string]struct {
		External any    `yaml:"external"`
		Name     string `yaml:"name"`
	} `yaml:"networks"`
}

func TestComposeAcceptsOverride(t *testing.T) {
	for flavor, argv := range composeCLIs(t) {
		t.Run(flavor, func(t *testing.T) {
			dir := t.TempDir()
			baseYAML := "services:\n  web:\n    image: shop-web\n    labels: [\"from.base=1\"]\n    environment:\n      IN_BASE: \"1\"\n" +
				"  worker:\n    image: shop-worker\n    networks: [default]\n"
			if flavor == "v2" {
				baseYAML = strings.Replace(baseYAML, "    image: shop-web\n", "    image: shop-web\n    ports:\n      - \"8080:80\"\n", 1)
			}
			write := func(name, content string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("docker-compose.yml", baseYAML)
			write(".env", "FROM_ENV_FILE=yes\n")
			release := "20250219-140000 \"quoted\" 'single' $HOME\nsecond line"
			p := Params{App: "shop", Stage: "production", Release: release, Domain: "shop.example.com", TLS: true,
				Health: testHealth(3000, "/up?a='b'&c=$HOME"), EnvFile: ".env", ComposeV1: flavor == "v1",
				Images: map[string]string{"worker": "shop-worker:20250219-140000"}, BaseCompose: []byte(baseYAML)}
			out, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			write("docker-compose.override.yml", string(out))

			args := append(append([]string{}, argv[1:]...), "-f", "docker-compose.yml", "-f", "docker-compose.override.yml", "config")
			cmd := exec.Command(argv[0], args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=shop-test", "HOME=/home/should-not-appear")
			stdout, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("%s config: %v\n%s\noverride:\n%s", flavor, err, stderr, out)
			}
			var r rendered
			if err := yaml.Unmarshal(stdout, &r); err != nil {
				t.Fatalf("parse config output: %v\n%s", err, stdout)
			}
			web := r.Services["web"]
			router, service := RouteNames(p)
			if web.Labels["traefik.http.routers."+router+".rule"] != "Host(`shop.example.com`)" ||
				web.Labels["from.base"] != "1" || strings.ReplaceAll(web.Labels["shipit.release"], "$$", "$") != release ||
				web.Labels["traefik.http.services."+service+".loadbalancer.server.port"] != "3000" {
				t.Errorf("web labels = %q", web.Labels)
			}
			if len(web.Ports) != 0 {
				t.Errorf("web ports = %v", web.Ports)
			}
			if !drainMounted(web.Volumes, filepath.Join(dir, RunDir)) {
				t.Errorf("web volumes = %+v, want %s mounted read-only at %s", web.Volumes, filepath.Join(dir, RunDir), probe.Mount)
			}
			if _, ok := web.Networks["traefik"]; !ok {
				t.Errorf("web networks = %v", web.Networks)
			}
			if _, ok := web.Networks["default"]; !ok {
				t.Errorf("web networks = %v", web.Networks)
			}
			// Compose prints '$' re-escaped as '$$' in config output; what
			// matters is that no host variable was interpolated.
			test := make([]string, len(web.Healthcheck.Test))
			for i, w := range web.Healthcheck.Test {
				test[i] = strings.ReplaceAll(w, "$$", "$")
			}
			if want := p.Health.Test(); !reflect.DeepEqual(test, want) {
				t.Errorf("healthcheck test = %q, want %q (exec form, no shell)", web.Healthcheck.Test, want)
			}
			for name, s := range r.Services {
				if s.Environment["FROM_ENV_FILE"] != "yes" {
					t.Errorf("%s: env_file not applied: %v", name, s.Environment)
				}
				if s.Labels["shipit.app"] != "shop" || s.Labels["shipit.stage"] != "production" {
					t.Errorf("%s: labels = %v", name, s.Labels)
				}
			}
			if web.Environment["IN_BASE"] != "1" {
				t.Errorf("base environment lost: %v", web.Environment)
			}
			if r.Services["worker"].Image != "shop-worker:20250219-140000" || r.Services["web"].Image != "shop-web" {
				t.Errorf("images: worker %q web %q", r.Services["worker"].Image, r.Services["web"].Image)
			}
			if n := r.Networks["traefik"]; n.Name != "traefik" || n.External == nil || n.External == false {
				t.Errorf("networks = %+v", r.Networks)
			}
			if strings.Contains(string(stdout), "should-not-appear") {
				t.Errorf("host $HOME was interpolated:\n%s", stdout)
			}
		})
	}
}

func drainMounted(vols []any, src string) bool {
	if len(vols) != 1 {
		return false
	}
	switch v := vols[0].(type) {
	case string:
		return v == src+":"+probe.Mount+":ro"
	case map[string]any:
		return v["source"] == src && v["target"] == probe.Mount && v["read_only"] == true
	}
	return false
}
