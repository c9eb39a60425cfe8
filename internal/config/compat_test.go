package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The original shipit's documented configs (testdata/original, copied
// verbatim from its docs and `shipit init` template, see
// /work/notes/original-shipit.md section 1.9) load as they are and mean
// what they meant there.

func loadOriginal(t *testing.T, name string) *Config {
	t.Helper()
	c, err := Load(filepath.Join("testdata", "original", name))
	if err != nil {
		t.Fatalf("%s does not load: %v (hint: %s)", name, err, hintOf(err))
	}
	return c
}

func hintOf(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Hint()
	}
	return ""
}

// originalDeploy is [deploy] of the documented full example: the keys it
// sets, the original's defaults for the rest (timeout = 60), ours for the
// keys it does not have.
var originalDeploy = Deploy{
	DeployTo: "/var/deploy", KeepReleases: 5, Build: "remote", WebService: "web",
	ComposeFile: "docker-compose.yml", StopTimeout: Duration(30 * time.Second),
	HealthCheck: HealthCheck{Path: "/health", Port: 8080, Interval: Duration(2 * time.Second),
		Timeout: Duration(60 * time.Second), Retries: 15, ProbeTimeout: Duration(5 * time.Second), UnhealthyAfter: 3},
	Rollout: Rollout{Batch: BatchPercent(100)}, Verify: defaultVerify,
}

func TestOriginalFullExamples(t *testing.T) {
	production := &Stage{User: "deploy",
		Hosts:   []Host{{Address: "1.2.3.4"}, {Address: "5.6.7.8"}},
		Traefik: Traefik{Domain: "myapp.com", TLS: true, ACMEEmail: "admin@myapp.com"}}
	staging := &Stage{User: "root", Proxy: "root@bastion.example.com",
		Hosts:   []Host{{Address: "172.10.0.160"}, {Address: "172.10.0.161"}},
		Traefik: Traefik{Domain: "staging.myapp.com"}}
	postgres := func(port string) map[string]Accessory {
		return map[string]Accessory{"postgres": {Image: "postgres:16", Host: "1.2.3.4", Port: port,
			Env: map[string]string{"POSTGRES_PASSWORD": "secret"}, Volumes: []string{"pgdata:/var/lib/postgresql/data"}}}
	}
	for _, tc := range []struct {
		file   string
		stages map[string]*Stage
		port   string
	}{
		{"configuration-v0.4.1.toml", map[string]*Stage{"production": production, "staging": staging}, "10.10.0.1:5432:5432"},
		{"configuration-v0.3.0.toml", map[string]*Stage{"production": production, "staging": staging}, "5432:5432"},
		{"configuration-v0.1.0.toml", map[string]*Stage{"production": production}, "5432:5432"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := loadOriginal(t, tc.file)
			want := &Config{
				App:         App{Name: "myapp", Repository: "git@github.com:user/myapp.git", Branch: "main"},
				Deploy:      originalDeploy,
				Stages:      tc.stages,
				Secrets:     Secrets{Recipients: []string{"age1..."}},
				Accessories: postgres(tc.port),
				Path:        filepath.Join("testdata", "original", tc.file),
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got\n%#v\nwant\n%#v", c, want)
			}
			// interval = 2 is two seconds, as the original meant.
			if got := c.Deploy.HealthCheck.Interval.Std(); got != 2*time.Second {
				t.Errorf("interval = %s", got)
			}
		})
	}
}

func TestOriginalQuickstartAndInit(t *testing.T) {
	c := loadOriginal(t, "quickstart.toml")
	want := Deploy{DeployTo: "/var/deploy", KeepReleases: 5, Build: "remote", WebService: "web",
		ComposeFile: "docker-compose.yml", StopTimeout: DefaultStopTimeout,
		HealthCheck: HealthCheck{Path: "/health", Port: 8080, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
			Retries: 15, ProbeTimeout: DefaultProbeTimeout, UnhealthyAfter: 3},
		Rollout: Rollout{Batch: BatchPercent(100)}, Verify: defaultVerify}
	if !reflect.DeepEqual(c.Deploy, want) {
		t.Errorf("quickstart deploy = %+v\nwant %+v", c.Deploy, want)
	}
	if c.App != (App{Name: "myapp", Repository: "git@github.com:user/myapp.git", Branch: "main"}) {
		t.Errorf("quickstart app = %+v", c.App)
	}
	st := c.Stages["production"]
	if st.User != "deploy" || len(st.Hosts) != 1 || st.Hosts[0].Address != "1.2.3.4" ||
		st.Traefik != (Traefik{Domain: "myapp.com", TLS: true, ACMEEmail: "you@example.com"}) {
		t.Errorf("quickstart stage = %+v", st)
	}

	// What the original's `shipit init` writes: timeout = 60 is the
	// overall wait in seconds, as its docs say.
	c = loadOriginal(t, "init-template-rendered.toml")
	if !reflect.DeepEqual(c.Deploy, originalDeploy) {
		t.Errorf("init deploy = %+v\nwant %+v", c.Deploy, originalDeploy)
	}
	if c.Deploy.HealthCheck.Timeout.Std() != time.Minute {
		t.Errorf("timeout = 60 gave %s", c.Deploy.HealthCheck.Timeout)
	}
	st = c.Stages["production"]
	if st.User != "deploy" || len(st.Hosts) != 1 || st.Hosts[0].Address != "YOUR_SERVER_IP" ||
		st.Traefik != (Traefik{Domain: "myapp.example.com"}) {
		t.Errorf("init stage = %+v", st)
	}
}

// The snippets of the original's docs, each in a minimal config.
func TestOriginalSnippets(t *testing.T) {
	const app = "[app]\nname = \"myapp\"\nrepository = \"git@github.com:user/myapp.git\"\n\n"
	const stage = "[stages.production]\nhosts = [{ address = \"1.2.3.4\" }]\n\n"
	for _, tc := range []struct {
		file, before, after string
		check               func(t *testing.T, c *Config)
	}{
		{"fragment-health-check.toml", app + stage, "", func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Deploy.HealthCheck, originalDeploy.HealthCheck) {
				t.Errorf("health_check = %+v", c.Deploy.HealthCheck)
			}
		}},
		{"fragment-health-check-cmd.toml", app + stage, "", func(t *testing.T, c *Config) {
			if hc := c.Deploy.HealthCheck; hc.Cmd.Shell != "pg_isready -U postgres" || hc.Path != "/health" || hc.Port != 8080 {
				t.Errorf("health_check = %+v", hc)
			}
		}},
		{"fragment-accessories.toml", app + stage, "", func(t *testing.T, c *Config) {
			want := map[string]Accessory{
				"postgres": {Image: "postgres:16", Host: "1.2.3.4", Port: "10.10.0.1:5432:5432",
					Env:     map[string]string{"POSTGRES_PASSWORD": "secret", "POSTGRES_DB": "myapp"},
					Volumes: []string{"pgdata:/var/lib/postgresql/data"}},
				"redis": {Image: "redis:7", Host: "1.2.3.4", Port: "10.10.0.1:6379:6379"},
			}
			if !reflect.DeepEqual(c.Accessories, want) {
				t.Errorf("accessories = %#v", c.Accessories)
			}
		}},
		{"fragment-secrets.toml", app + stage, "", func(t *testing.T, c *Config) {
			if r := c.Secrets.Recipients; len(r) != 1 || r[0] != "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p" {
				t.Errorf("recipients = %q", r)
			}
		}},
		{"fragment-traefik.toml", app + stage, "", func(t *testing.T, c *Config) {
			if tr := c.Stages["production"].Traefik; tr != (Traefik{Domain: "myapp.com", TLS: true, ACMEEmail: "admin@myapp.com"}) {
				t.Errorf("traefik = %+v", tr)
			}
		}},
		{"fragment-setup-os.toml", app, "hosts = [{ address = \"1.2.3.4\" }]\n", func(t *testing.T, c *Config) {
			if os := c.Stages["production"].OS; os != "nixos" {
				t.Errorf("os = %q", os)
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			frag, err := os.ReadFile(filepath.Join("testdata", "original", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse([]byte(tc.before+string(frag)+tc.after), tc.file)
			if err != nil {
				t.Fatalf("%v (hint: %s)", err, hintOf(err))
			}
			tc.check(t, c)
		})
	}
}

// Every value the original's validation accepts for os (ubuntu, debian,
// nixos), and alpine.
func TestStageOS(t *testing.T) {
	for _, os := range []string{"ubuntu", "debian", "nixos", "alpine"} {
		c, err := Parse([]byte(minimal+"[stages.other]\nos = \""+os+"\"\nhosts = [{ address = \"b\" }]\n"), "shipit.toml")
		if err != nil || c.Stages["other"].OS != os {
			t.Errorf("os = %q: %v", os, err)
		}
	}
}

func TestDurationValues(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`2`:         2 * time.Second,
		`0`:         0,
		`+3`:        3 * time.Second,
		`1_000`:     1000 * time.Second,
		`0x10`:      16 * time.Second,
		`"2s"`:      2 * time.Second,
		`"500ms"`:   500 * time.Millisecond,
		`"1m30s"`:   90 * time.Second,
		`'1h'`:      time.Hour,
		`"0s"`:      0,
		`"1.5s"`:    1500 * time.Millisecond,
		`"""10s"""`: 10 * time.Second,
	} {
		c, err := Parse([]byte(minimal+"[deploy.rollout]\nwait = "+in+"\n"), "shipit.toml")
		if err != nil {
			t.Errorf("wait = %s: %v", in, err)
			continue
		}
		if got := c.Deploy.Rollout.Wait; got.Std() != want || got.String() != want.String() {
			t.Errorf("wait = %s gave %s, want %s", in, got, want)
		}
	}
	// Bad values: the error is at the value, says what is wrong and what
	// is expected.
	for in, msg := range map[string]string{
		`-1`:                  "must not be negative, got -1",
		`"-2s"`:               `must not be negative, got "-2s"`,
		`"2"`:                 `invalid duration "2"`,
		`"2 s"`:               `invalid duration "2 s"`,
		`"two seconds"`:       `invalid duration "two seconds"`,
		`""`:                  `invalid duration ""`,
		`9223372036854775807`: "seconds is too long",
		`1.5`:                 "wrong type for deploy.rollout.wait: got a float",
		`false`:               "wrong type for deploy.rollout.wait: got a boolean",
		`1979-05-27`:          "wrong type for deploy.rollout.wait: got a date",
		`{ seconds = 2 }`:     "wrong type for deploy.rollout.wait: got an inline table",
	} {
		_, err := Parse([]byte(minimal+"[deploy.rollout]\nwait = "+in+"\n"), "shipit.toml")
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("wait = %s: err = %v, want a *config.Error", in, err)
			continue
		}
		if ce.Line != 7 || ce.Col != 8 || !strings.Contains(ce.Msg, msg) || ce.Hint() == "" {
			t.Errorf("wait = %s: %v (hint %q), want 7:8 and %q", in, err, ce.Hint(), msg)
		}
	}
}

func TestBatch(t *testing.T) {
	for in, want := range map[string]struct {
		s     string
		sizes [4]int // for 1, 4, 10, 0 hosts
	}{
		`1`:      {"1", [4]int{1, 1, 1, 1}},
		`3`:      {"3", [4]int{1, 3, 3, 1}},
		`50`:     {"50", [4]int{1, 4, 10, 1}},
		`"25%"`:  {"25%", [4]int{1, 1, 2, 1}},
		`"50%"`:  {"50%", [4]int{1, 2, 5, 1}},
		`"1%"`:   {"1%", [4]int{1, 1, 1, 1}},
		`"100%"`: {"100%", [4]int{1, 4, 10, 1}},
	} {
		c, err := Parse([]byte(minimal+"[deploy.rollout]\nbatch = "+in+"\n"), "shipit.toml")
		if err != nil {
			t.Errorf("batch = %s: %v", in, err)
			continue
		}
		b := c.Deploy.Rollout.Batch
		if b.String() != want.s {
			t.Errorf("batch = %s: String() = %q, want %q", in, b, want.s)
		}
		for i, hosts := range []int{1, 4, 10, 0} {
			if got := b.Size(hosts); got != want.sizes[i] {
				t.Errorf("batch = %s: Size(%d) = %d, want %d", in, hosts, got, want.sizes[i])
			}
		}
	}
	if n, ok := BatchOf(3).Count(); !ok || n != 3 {
		t.Errorf("BatchOf(3).Count() = %d, %v", n, ok)
	}
	if _, ok := BatchOf(3).Percent(); ok {
		t.Error("BatchOf(3) is a percentage")
	}
	if p, ok := (Batch{}).Percent(); !ok || p != 100 || (Batch{}).Size(6) != 6 || (Batch{}).String() != "100%" {
		t.Errorf("zero Batch = %d%%, %v, Size(6) = %d", p, ok, (Batch{}).Size(6))
	}
	for in, msg := range map[string]string{
		`0`:      "must be at least 1 host, got 0",
		`-2`:     "must be at least 1 host, got -2",
		`"0%"`:   "between 1% and 100%",
		`"101%"`: "between 1% and 100%",
		`"-5%"`:  `invalid batch "-5%"`,
		`"25 %"`: `invalid batch "25 %"`,
		`"%"`:    `invalid batch "%"`,
		`"all"`:  `invalid batch "all"`,
		`"2"`:    `invalid batch "2"`,
		`true`:   "wrong type for deploy.rollout.batch: got a boolean",
		`[2]`:    "wrong type for deploy.rollout.batch: got an array",
	} {
		_, err := Parse([]byte(minimal+"[deploy.rollout]\nbatch = "+in+"\n"), "shipit.toml")
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("batch = %s: err = %v, want a *config.Error", in, err)
			continue
		}
		col := 9
		if strings.HasPrefix(in, "[") {
			col = 1 // an array has no position of its own: its key's
		}
		if ce.Line != 7 || ce.Col != col || !strings.Contains(ce.Msg, msg) || ce.Hint() == "" {
			t.Errorf("batch = %s: %v (hint %q), want 7:%d and %q", in, err, ce.Hint(), col, msg)
		}
	}
}

// Duration and Batch decode on their own too (a caller decoding with
// go-toml's unmarshaler interface), with the same rules.
func TestUnmarshalTOML(t *testing.T) {
	var d Duration
	if err := d.UnmarshalTOML([]byte("90")); err != nil || d.Std() != 90*time.Second {
		t.Errorf("90 -> %s, %v", d, err)
	}
	if err := d.UnmarshalTOML([]byte(`"1m"`)); err != nil || d.Std() != time.Minute {
		t.Errorf(`"1m" -> %s, %v`, d, err)
	}
	for _, bad := range []string{`-1`, `"x"`, `a = 1`, `1.0`} {
		if err := d.UnmarshalTOML([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	var b Batch
	if err := b.UnmarshalTOML([]byte(`"10%"`)); err != nil || b != BatchPercent(10) {
		t.Errorf(`"10%%" -> %v, %v`, b, err)
	}
	if err := b.UnmarshalTOML([]byte(`0`)); err == nil {
		t.Error("batch 0 accepted")
	}
	// Encoders write a Duration as its string, which decodes back.
	out, err := json.Marshal(struct{ D Duration }{Duration(90 * time.Second)})
	if err != nil || string(out) != `{"D":"1m30s"}` {
		t.Errorf("json = %s, %v", out, err)
	}
	c, err := Parse([]byte(minimal+"[deploy.rollout]\nwait = \"1m30s\"\n"), "shipit.toml")
	if err != nil || c.Deploy.Rollout.Wait != Duration(90*time.Second) {
		t.Errorf("1m30s back: %v, %v", c.Deploy.Rollout.Wait, err)
	}
}
