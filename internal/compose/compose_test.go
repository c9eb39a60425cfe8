package compose

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
)

// A release's compose files come back verbatim, one a line, whatever they
// hold; a release of an older shipit (one space-separated line) still
// reads as before.
func TestDescribeReadsFilesVerbatim(t *testing.T) {
	cases := []struct {
		name, desc string
		files      []string
	}{
		{"one a line", "demo-r2\nmy app*.yml\ndocker-compose.override.yml\n", []string{"my app*.yml", "docker-compose.override.yml"}},
		{"older form", "demo-r2\ndocker-compose.yml docker-compose.override.yml\n", []string{"docker-compose.yml", "docker-compose.override.yml"}},
		{"leading space kept", "demo-r2\n a.yml\nb.yml\n", []string{" a.yml", "b.yml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r2")
			os.MkdirAll(dir, 0o755)
			// Files a glob would match: a re-split and expanded name shows.
			os.WriteFile(filepath.Join(dir, "my app1.yml"), nil, 0o644)
			os.WriteFile(filepath.Join(dir, DescFile), []byte(c.desc), 0o644)
			r, err := Describe(context.Background(), &localconn.Conn{HostName: "h", Dir: dir}, dir, "demo", "x.yml", "docker-compose.override.yml")
			if err != nil {
				t.Fatal(err)
			}
			if r.Project != "demo-r2" || !reflect.DeepEqual(r.Files, c.files) || r.Original {
				t.Fatalf("got %+v, want files %q", r, c.files)
			}
			got := Flavor{Command: "docker compose"}.Run(r, "down")
			want := "cd " + dir + " && docker compose -p demo-r2"
			for _, f := range c.files {
				want += " -f " + quoteForTest(f)
			}
			if got != want+" down" {
				t.Fatalf("Run = %q, want %q", got, want+" down")
			}
		})
	}
}

func quoteForTest(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return "'" + s + "'"
		}
	}
	return s
}

// Without a description, a release whose override carries shipit's labels
// (or has none yet) is <app>-<release>; one whose override does not is the
// original shipit's, run in its directory.
func TestDescribeWithoutDescription(t *testing.T) {
	cases := []struct {
		name, override string
		original       bool
	}{
		{"no override yet", "", false},
		{"older shipit", "services:\n  web:\n    labels:\n      shipit.release: r2\n", false},
		{"original shipit", "services:\n  web:\n    labels:\n      traefik.enable: \"true\"\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r2")
			os.MkdirAll(dir, 0o755)
			if c.override != "" {
				os.WriteFile(filepath.Join(dir, "docker-compose.override.yml"), []byte(c.override), 0o644)
			}
			r, err := Describe(context.Background(), &localconn.Conn{HostName: "h", Dir: dir}, dir, "demo", "x.yml", "docker-compose.override.yml")
			if err != nil {
				t.Fatal(err)
			}
			if r.Original != c.original {
				t.Fatalf("Original = %v, want %v (%+v)", r.Original, c.original, r)
			}
			wantProject := "demo-r2"
			if c.original {
				wantProject = "r2"
			}
			if r.Project != wantProject {
				t.Fatalf("project %q, want %q", r.Project, wantProject)
			}
		})
	}
}
