package accessory

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/hint"
)

func TestBuildRunCommandAndEnvFile(t *testing.T) {
	s, err := Build("shop", "production", "db", config.Accessory{
		Image:   "postgres:16",
		Port:    "5432",
		Env:     map[string]string{"POSTGRES_PASSWORD": "s3cr'et $x", "A": "1"},
		Volumes: []string{"data:/var/lib/postgresql/data", "/srv/backup:/backup:ro"},
		Cmd:     `postgres -c 'max_connections=200'`,
	})
	if err != nil {
		t.Fatal(err)
	}
	run := s.RunCommand()
	for _, want := range []string{"--name shop-db", "--restart always", "--network traefik",
		"--publish 127.0.0.1:5432:5432", "--volume data:/var/lib/postgresql/data",
		"--volume /srv/backup:/backup:ro", "--env-file /dev/stdin", "postgres:16 postgres -c max_connections=200",
		"--label shipit.accessory=db"} {
		if !strings.Contains(run, want) {
			t.Errorf("run command lacks %q:\n%s", want, run)
		}
	}
	if strings.Contains(run, "s3cr") || strings.Contains(s.Labels()[LabelConfig], "s3cr") {
		t.Fatalf("env value leaked into the command line or labels:\n%s", run)
	}
	if got := s.EnvFile(); got != "A=1\nPOSTGRES_PASSWORD=s3cr'et $x\n" {
		t.Fatalf("env file = %q", got)
	}
	if got := s.NamedVolumes(); len(got) != 1 || got[0] != "data" {
		t.Fatalf("named volumes = %v", got)
	}
	// The command line is one shell line: sh must see the words we meant.
	out, err := exec.Command("sh", "-c", "set -- "+strings.TrimPrefix(run, "docker run")+`; for a; do printf '[%s]' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "[--label][shipit.config={") || !strings.HasSuffix(string(out), "[postgres:16][postgres][-c][max_connections=200]") {
		t.Fatalf("sh words: %s", out)
	}
}

// Named volumes are the Docker volumes written in shipit.toml, as with the
// original shipit (`docker run -v pgdata:...`), so a migrated host's data
// is mounted; only missing ones are created, labelled as shipit's.
func TestNamedVolumesAsWritten(t *testing.T) {
	s, err := Build("myapp", "production", "postgres", config.Accessory{
		Image:   "postgres:16",
		Volumes: []string{"pgdata:/var/lib/postgresql/data", "/srv/backup:/backup:ro", "my.vol_2:/x:rw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.NamedVolumes(), " "); got != "pgdata my.vol_2" {
		t.Fatalf("named volumes = %q", got)
	}
	run := s.RunCommand()
	for _, want := range []string{"--volume pgdata:/var/lib/postgresql/data", "--volume /srv/backup:/backup:ro", "--volume my.vol_2:/x:rw"} {
		if !strings.Contains(run, want) {
			t.Errorf("run command lacks %q:\n%s", want, run)
		}
	}
	if strings.Contains(run, "myapp-postgres-pgdata") {
		t.Errorf("volume name prefixed:\n%s", run)
	}
	if got := strings.Join(s.Summary.Volumes, " "); got != "pgdata:/var/lib/postgresql/data /srv/backup:/backup:ro my.vol_2:/x:rw" {
		t.Errorf("summary volumes = %q", got)
	}
	want := []string{
		"docker volume inspect pgdata >/dev/null 2>&1 || docker volume create --label shipit.app=myapp --label shipit.accessory=postgres pgdata >/dev/null",
		"docker volume inspect my.vol_2 >/dev/null 2>&1 || docker volume create --label shipit.app=myapp --label shipit.accessory=postgres my.vol_2 >/dev/null",
	}
	if got := s.VolumeCreateCommands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("volume create commands:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPorts(t *testing.T) {
	for in, want := range map[string]string{
		"5432":              "127.0.0.1:5432:5432",
		"8080:80":           "127.0.0.1:8080:80",
		"0.0.0.0:53:53/udp": "0.0.0.0:53:53/udp",
		"[::1]:80:8080":     "[::1]:80:8080",
	} {
		got, err := parsePort(in)
		if err != nil || got != want {
			t.Errorf("parsePort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "0", "70000", "80:", "1:2/sctp", ":1:2"} {
		if got, err := parsePort(bad); err == nil {
			t.Errorf("parsePort(%q) = %q, want an error", bad, got)
		}
	}
}

func TestBadConfigsSayHowToFix(t *testing.T) {
	for _, c := range []struct {
		a    config.Accessory
		want string
	}{
		{config.Accessory{Image: "x", Volumes: []string{"./data:/data"}}, "neither a volume name nor an absolute host path"},
		{config.Accessory{Image: "x", Volumes: []string{"data:relative"}}, "must be absolute"},
		{config.Accessory{Image: "x", Volumes: []string{"aa:/d", "bb:/d"}}, "mounted twice"},
		{config.Accessory{Image: "x", Volumes: []string{"a:/d"}}, "a volume name is two or more"},
		{config.Accessory{Image: "x", Volumes: []string{"-x:/d"}}, "neither a volume name"},
		{config.Accessory{Image: "x", Env: map[string]string{"K": "two\nlines"}}, "newline"},
		{config.Accessory{Image: "x", Cmd: "echo hi; rm -rf /"}, "would need a shell"},
		{config.Accessory{Image: "x", Cmd: "echo 'open"}, "unterminated"},
		{config.Accessory{Image: "x", Port: "abc"}, "not a port number"},
	} {
		_, err := Build("app", "p", "db", c.a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.a, err, c.want)
			continue
		}
		if hint.Of(err) == "" {
			t.Errorf("%+v: no hint", c.a)
		}
	}
}

func TestDiffNamesWhatChangedButNoValues(t *testing.T) {
	base := config.Accessory{Image: "redis:7", Port: "6379", Env: map[string]string{"PASS": "old", "KEEP": "k", "GONE": "g"},
		Volumes: []string{"data:/data"}, Cmd: "redis-server --requirepass hunter2"}
	old, err := Build("app", "p", "cache", base)
	if err != nil {
		t.Fatal(err)
	}
	recorded := old.Labels()[LabelConfig]
	if d := Diff(recorded, old); len(d) != 1 || d[0] != "container settings changed" {
		t.Fatalf("diff of identical specs: %v", d)
	}
	next := base
	next.Image = "redis:8"
	next.Env = map[string]string{"PASS": "new", "KEEP": "k", "ADDED": "a"}
	next.Volumes = []string{"data:/data", "/srv/x:/x"}
	next.Cmd = "redis-server --requirepass hunter3"
	s, err := Build("app", "p", "cache", next)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(recorded, s), "; ")
	for _, want := range []string{"image redis:7 -> redis:8", "env: changed PASS; added ADDED; removed GONE", "volumes: +/srv/x:/x", "cmd changed"} {
		if !strings.Contains(got, want) {
			t.Errorf("diff %q lacks %q", got, want)
		}
	}
	for _, secret := range []string{"old", "new", "hunter"} {
		if strings.Contains(got, secret) {
			t.Errorf("diff %q shows a value (%s)", got, secret)
		}
	}
	if old.Hash == s.Hash {
		t.Fatal("hash unchanged")
	}
}

func TestSplitWords(t *testing.T) {
	got, err := SplitWords(`sh -c 'echo started; sleep 1d' "a \"b\"" c\ d`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sh", "-c", "echo started; sleep 1d", `a "b"`, "c d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"a | b", "echo $HOME", `echo "$HOME"`, "a # comment", ""} {
		if _, err := SplitWords(bad); err == nil {
			t.Errorf("SplitWords(%q) accepted", bad)
		}
	}
}
