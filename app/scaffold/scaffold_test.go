package scaffold

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shipit-dev/shipit/internal/config"
)

// Every scaffold shipit init can write loads with config.Load and carries
// the answers, including values that need TOML escaping.
func TestInitTomlLoads(t *testing.T) {
	cases := []initAnswers{
		{Name: "blog", Branch: "main", WebService: "web", ComposeFile: "docker-compose.yml", Port: 80, Stage: "production"},
		{Name: "shop_2", Repository: `git@example.com:a/"quoted"\path.git`, Branch: "feature/x", WebService: "app",
			ComposeFile: "compose.yaml", Port: 3000, Hosts: []string{"10.0.0.1", "web2:2222"}, User: "deploy",
			Stage: "staging-eu", Domain: "shop.example.com"},
	}
	for _, a := range cases {
		t.Run(a.Name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "shipit.toml")
			if err := os.WriteFile(p, []byte(renderToml(a)), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(p)
			if err != nil {
				t.Fatalf("scaffold does not load: %v\n%s", err, renderToml(a))
			}
			st, err := cfg.Stage(a.Stage)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.App.Name != a.Name || cfg.App.Repository != a.Repository || cfg.App.Branch != a.Branch ||
				cfg.Deploy.WebService != a.WebService || cfg.Deploy.ComposeFile != a.ComposeFile ||
				cfg.Deploy.HealthCheck.Port != a.Port || st.User != a.User || st.Traefik.Domain != a.Domain ||
				st.Traefik.TLS != (a.Domain != "") {
				t.Fatalf("loaded %+v %+v from\n%s", cfg, st, renderToml(a))
			}
			want := a.Hosts
			if len(want) == 0 {
				want = []string{"203.0.113.10"}
			}
			if len(st.Hosts) != len(want) {
				t.Fatalf("hosts %+v, want %v", st.Hosts, want)
			}
			for i, h := range st.Hosts {
				if h.Address != want[i] {
					t.Fatalf("host %d = %q, want %q", i, h.Address, want[i])
				}
			}
		})
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{"My Shop.app": "my-shop-app", "api": "api", "__x": "x", "...": "app", "Ünï": "n-"} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
