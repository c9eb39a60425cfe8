package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `[app]
name = "demo"

[stages.prod]
hosts = [{ address = "10.0.0.1" }]
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		prefix string   // exact start of Error()
		msg    []string // substrings of Error()
		hint   []string // substrings of Hint()
	}{
		{
			name:   "unknown key with suggestion",
			doc:    "[app]\nname = \"demo\"\nbrnch = \"main\"\n",
			prefix: "shipit.toml:3:1: ",
			msg:    []string{`unknown key "brnch" in [app]`},
			hint:   []string{`did you mean "branch"?`, "valid keys in [app]: name, repository, branch"},
		},
		{
			name:   "unknown key without suggestion",
			doc:    "[app]\nname = \"demo\"\nfrobnicate = 1\n",
			prefix: "shipit.toml:3:1: ",
			msg:    []string{`unknown key "frobnicate" in [app]`},
			hint:   []string{"valid keys in [app]: name, repository, branch"},
		},
		{
			name:   "unknown key in nested table",
			doc:    "[app]\nname = \"demo\"\n[deploy.health_check]\n  intervl = \"1s\"\n",
			prefix: "shipit.toml:4:3: ",
			msg:    []string{`unknown key "intervl" in [deploy.health_check]`},
			hint:   []string{`did you mean "interval"?`, "path, port, interval, timeout, retries, probe_timeout, unhealthy_after, cmd"},
		},
		{
			name:   "unknown key in inline host table",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = [{ address = \"a\", usr = \"b\" }]\n",
			prefix: "shipit.toml:4:27: ",
			msg:    []string{`unknown key "usr" in [[stages.prod.hosts]]`},
			hint:   []string{`did you mean "user"?`, "valid keys in [[stages.prod.hosts]]: address, user, port"},
		},
		{
			name:   "unknown key in array table",
			doc:    "[app]\nname = \"demo\"\n[[stages.prod.hosts]]\naddress = \"a\"\n[[stages.prod.hosts]]\naddres = \"b\"\n",
			prefix: "shipit.toml:6:1: ",
			msg:    []string{`unknown key "addres"`},
			hint:   []string{`did you mean "address"?`},
		},
		{
			name:   "unknown stage key",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = [{ address = \"a\" }]\nproxi = \"j\"\n",
			prefix: "shipit.toml:5:1: ",
			msg:    []string{`unknown key "proxi" in [stages.prod]`},
			hint:   []string{`did you mean "proxy"?`, "user, port, os, proxy, hosts, env, traefik"},
		},
		{
			name:   "unknown top-level key",
			doc:    "aap = 1\n[app]\nname = \"demo\"\n",
			prefix: "shipit.toml:1:1: ",
			msg:    []string{`unknown key "aap" at the top level`},
			hint:   []string{`did you mean "app"?`, "app, deploy, stages, secrets, accessories"},
		},
		{
			name:   "unknown top-level table",
			doc:    "[app]\nname = \"demo\"\n[deplyo]\nbuild = \"local\"\n",
			prefix: "shipit.toml:3:2: ",
			msg:    []string{"unknown table [deplyo]"},
			hint:   []string{`did you mean [deploy]?`},
		},
		{
			// The whole dotted header is named, at its unknown part.
			name:   "unknown nested table",
			doc:    "[app]\nname = \"demo\"\n[deploy.healthcheck]\npath = \"/up\"\n",
			prefix: "shipit.toml:3:9: ",
			msg:    []string{"unknown table [deploy.healthcheck]"},
			hint:   []string{`did you mean [deploy.health_check]?`, "valid keys in [deploy]: deploy_to,"},
		},
		{
			name:   "unknown table in a stage",
			doc:    "[app]\nname = \"demo\"\n[stages.sandbox]\nhosts = [{ address = \"a\" }]\n[stages.sandbox.trafik]\ndomain = \"x\"\n",
			prefix: "shipit.toml:5:17: ",
			msg:    []string{"unknown table [stages.sandbox.trafik]"},
			hint:   []string{`did you mean [stages.sandbox.traefik]?`, "valid keys in [stages.sandbox]:"},
		},
		{
			// A header deeper than the unknown part names the unknown part.
			name:   "table under an unknown table",
			doc:    "[app]\nname = \"demo\"\n[deploy.healthcheck.extra]\nx = 1\n",
			prefix: "shipit.toml:3:9: ",
			msg:    []string{"unknown table [deploy.healthcheck]"},
			hint:   []string{`did you mean [deploy.health_check]?`},
		},
		{
			name:   "unknown dotted key",
			doc:    "[app]\nname = \"demo\"\n[stages.sandbox]\nhosts = [{ address = \"a\" }]\ntrafik.domain = \"x\"\n",
			prefix: "shipit.toml:5:1: ",
			msg:    []string{`unknown key "trafik" in [stages.sandbox]`},
			hint:   []string{`did you mean "traefik"?`},
		},
		{
			name:   "integer given a string",
			doc:    "[app]\nname = \"demo\"\n[deploy]\nkeep_releases = \"five\"\n",
			prefix: "shipit.toml:4:17: ",
			msg:    []string{"wrong type for deploy.keep_releases: got a string"},
			hint:   []string{"expected an integer (write the number without quotes)"},
		},
		{
			name:   "integer given a float",
			doc:    "[app]\nname = \"demo\"\n[deploy.health_check]\nport = 80.5\n",
			prefix: "shipit.toml:4:8: ",
			msg:    []string{"wrong type for deploy.health_check.port: got a float"},
			hint:   []string{"expected an integer"},
		},
		{
			name:   "string given an integer",
			doc:    "[app]\nname = 42\n",
			prefix: "shipit.toml:2:8: ",
			msg:    []string{"wrong type for app.name: got an integer"},
			hint:   []string{"expected a string (put the value in double quotes)"},
		},
		{
			name:   "bool given a string",
			doc:    "[app]\nname = \"demo\"\n[stages.prod.traefik]\ntls = \"yes\"\n",
			prefix: "shipit.toml:4:7: ",
			msg:    []string{"wrong type for stages.prod.traefik.tls: got a string"},
			hint:   []string{"expected a boolean (true or false) (write true or false without quotes)"},
		},
		{
			name:   "hosts given a string",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = \"10.0.0.1\"\n",
			prefix: "shipit.toml:4:9: ",
			msg:    []string{"wrong type for stages.prod.hosts: got a string"},
			hint:   []string{"expected an array of tables (each with keys address, user, port, primary)"},
		},
		{
			name:   "host address given an integer",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = [{ address = 1 }]\n",
			prefix: "shipit.toml:4:22: ",
			msg:    []string{"wrong type for stages.prod.hosts[0].address: got an integer"},
			hint:   []string{"expected a string"},
		},
		{
			name:   "env value given an integer",
			doc:    minimal + "[stages.prod.env]\nWORKERS = 4\n",
			prefix: "shipit.toml:7:11: ",
			msg:    []string{"wrong type for stages.prod.env.WORKERS: got an integer"},
			hint:   []string{"expected a string (put the value in double quotes)"},
		},
		{
			name:   "recipients element given an integer",
			doc:    minimal + "[secrets]\nrecipients = [\"age1x\", 2]\n",
			prefix: "shipit.toml:7:24: ",
			msg:    []string{"wrong type for secrets.recipients[1]: got an integer"},
			hint:   []string{"expected a string"},
		},
		{
			name:   "dotted key under a string",
			doc:    "[app]\nname = \"demo\"\nbranch.x = 1\n",
			prefix: "shipit.toml:3:",
			msg:    []string{"wrong type for app.branch: got a table"},
			hint:   []string{"expected a string"},
		},
		{
			name:   "syntax error unterminated string",
			doc:    "[app]\nname = \"demo\n",
			prefix: "shipit.toml:2:",
			msg:    []string{"syntax error"},
			hint:   []string{"TOML syntax"},
		},
		{
			name:   "syntax error duplicate table",
			doc:    "[app]\nname = \"demo\"\n[app]\n",
			prefix: "shipit.toml:3:2: ",
			msg:    []string{"syntax error", "already exists"},
		},
		{
			name:   "missing app name",
			doc:    "[stages.prod]\nhosts = [{ address = \"a\" }]\n\n[app]\nbranch = \"main\"\n",
			prefix: "shipit.toml:4:1: ",
			msg:    []string{"missing required key app.name"},
			hint:   []string{`name = "myapp"`},
		},
		{
			name:   "missing app table",
			doc:    "[stages.prod]\nhosts = [{ address = \"a\" }]\n",
			prefix: "shipit.toml:1:1: ",
			msg:    []string{"missing required key app.name"},
		},
		{
			name:   "invalid app name",
			doc:    "[app]\nname = \"My App\"\n[stages.prod]\nhosts = [{ address = \"a\" }]\n",
			prefix: "shipit.toml:2:8: ",
			msg:    []string{`invalid app.name "My App"`},
			hint:   []string{"Docker Compose project name"},
		},
		{
			name:   "no stages",
			doc:    "[app]\nname = \"demo\"\n",
			prefix: "shipit.toml:1:1: ",
			msg:    []string{"no stages defined"},
			hint:   []string{"[stages.production]"},
		},
		{
			name:   "stage without hosts",
			doc:    "[app]\nname = \"demo\"\n\n[stages.staging]\nuser = \"deploy\"\n",
			prefix: "shipit.toml:4:1: ",
			msg:    []string{`stage "staging" has no hosts`},
			hint:   []string{"[[stages.staging.hosts]]"},
		},
		{
			name:   "stage with empty hosts array",
			doc:    "[app]\nname = \"demo\"\n\n[stages.staging]\nhosts = []\n",
			prefix: "shipit.toml:5:1: ",
			msg:    []string{`stage "staging" has no hosts`},
		},
		{
			name:   "stage only implied by a subtable",
			doc:    "[app]\nname = \"demo\"\n[stages.prod.traefik]\ndomain = \"x.example.com\"\n",
			prefix: "shipit.toml:3:",
			msg:    []string{`stage "prod" has no hosts`},
		},
		{
			name:   "host without address (array table)",
			doc:    "[app]\nname = \"demo\"\n[[stages.prod.hosts]]\naddress = \"a\"\n\n[[stages.prod.hosts]]\nuser = \"root\"\n",
			prefix: "shipit.toml:6:1: ",
			msg:    []string{"missing required key stages.prod.hosts[1].address"},
		},
		{
			name:   "host without address (inline)",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = [{ user = \"root\" }]\n",
			prefix: "shipit.toml:4:10: ",
			msg:    []string{"missing required key stages.prod.hosts[0].address"},
		},
		{
			name:   "empty host address",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nhosts = [{ address = \"\" }]\n",
			prefix: "shipit.toml:4:22: ",
			msg:    []string{"stages.prod.hosts[0].address is empty"},
		},
		{
			name:   "bad stage name",
			doc:    "[app]\nname = \"demo\"\n[stages.\"Prod env\"]\nhosts = [{ address = \"a\" }]\n",
			prefix: "shipit.toml:3:1: ",
			msg:    []string{`invalid stage name "Prod env"`},
		},
		{
			name:   "bad build",
			doc:    minimal + "[deploy]\nbuild = \"cloud\"\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{`deploy.build must be "remote" or "local", got "cloud"`},
			hint:   []string{`build = "local"`},
		},
		{
			name:   "compose_file with a line break",
			doc:    minimal + "[deploy]\ncompose_file = \"a\\nb.yml\"\n",
			prefix: "shipit.toml:7:16: ",
			msg:    []string{`deploy.compose_file must not contain a line break, got "a\nb.yml"`},
		},
		{
			name:   "keep_releases zero",
			doc:    minimal + "[deploy]\nkeep_releases = 0\n",
			prefix: "shipit.toml:7:17: ",
			msg:    []string{"deploy.keep_releases must be at least 1, got 0"},
		},
		{
			name:   "bad interval",
			doc:    minimal + "[deploy.health_check]\ninterval = \"2 seconds\"\n",
			prefix: "shipit.toml:7:12: ",
			msg:    []string{`deploy.health_check.interval: invalid duration "2 seconds"`},
			hint:   []string{`"500ms"`, "integer number of seconds"},
		},
		{
			name:   "bad timeout",
			doc:    minimal + "[deploy.health_check]\ntimeout = \"\"\n",
			prefix: "shipit.toml:7:11: ",
			msg:    []string{`deploy.health_check.timeout: invalid duration ""`},
		},
		{
			name:   "duration string without a unit",
			doc:    minimal + "[deploy.health_check]\ninterval = \"2\"\n",
			prefix: "shipit.toml:7:12: ",
			msg:    []string{`invalid duration "2"`},
			hint:   []string{`needs a unit ("2s")`, "without quotes"},
		},
		{
			name:   "negative integer duration",
			doc:    minimal + "[deploy.health_check]\ntimeout = -60\n",
			prefix: "shipit.toml:7:11: ",
			msg:    []string{"deploy.health_check.timeout: must not be negative, got -60"},
			hint:   []string{"an integer number of seconds (2)", `"1m30s"`},
		},
		{
			name:   "negative duration string in an inline table",
			doc:    minimal + "[deploy]\nhealth_check = { interval = \"-1s\" }\n",
			prefix: "shipit.toml:7:29: ",
			msg:    []string{`deploy.health_check.interval: must not be negative, got "-1s"`},
		},
		{
			name:   "duration given a float",
			doc:    minimal + "[deploy.health_check]\ninterval = 2.5\n",
			prefix: "shipit.toml:7:12: ",
			msg:    []string{"wrong type for deploy.health_check.interval: got a float"},
			hint:   []string{`expected a duration: an integer number of seconds (2) or a duration string ("2s"`},
		},
		{
			name:   "duration given a boolean",
			doc:    minimal + "[deploy]\nstop_timeout = true\n",
			prefix: "shipit.toml:7:16: ",
			msg:    []string{"wrong type for deploy.stop_timeout: got a boolean"},
		},
		{
			name:   "duration given an array",
			doc:    minimal + "[deploy.rollout]\nwait = [1]\n",
			prefix: "shipit.toml:7:1: ",
			msg:    []string{"wrong type for deploy.rollout.wait: got an array"},
		},
		{
			name:   "duration given a table",
			doc:    minimal + "[deploy.health_check.probe_timeout]\nseconds = 1\n",
			prefix: "shipit.toml:6:1: ",
			msg:    []string{"wrong type for deploy.health_check.probe_timeout: got a table"},
		},
		{
			name:   "duration given a dotted key",
			doc:    minimal + "[deploy]\ndrain_timeout.s = 1\n",
			prefix: "shipit.toml:7:1: ",
			msg:    []string{"wrong type for deploy.drain_timeout: got a table"},
		},
		{
			name:   "zero interval",
			doc:    minimal + "[deploy.health_check]\ninterval = 0\n",
			prefix: "shipit.toml:7:12: ",
			msg:    []string{"deploy.health_check.interval must be at least 1ms, got 0s"},
			hint:   []string{"between two probes"},
		},
		{
			name:   "zero overall timeout",
			doc:    minimal + "[deploy.health_check]\ntimeout = \"0s\"\n",
			prefix: "shipit.toml:7:11: ",
			msg:    []string{"deploy.health_check.timeout must be positive, got 0s"},
			hint:   []string{"waits for the new release to become healthy"},
		},
		{
			name:   "zero probe timeout",
			doc:    minimal + "[deploy.health_check]\nprobe_timeout = 0\n",
			prefix: "shipit.toml:7:17: ",
			msg:    []string{"deploy.health_check.probe_timeout must be at least 1ms, got 0s"},
		},
		{
			name:   "unhealthy_after zero",
			doc:    minimal + "[deploy.health_check]\nunhealthy_after = 0\n",
			prefix: "shipit.toml:7:19: ",
			msg:    []string{"deploy.health_check.unhealthy_after must be at least 1, got 0"},
			hint:   []string{"Traefik's rotation"},
		},
		{
			name:   "retries zero",
			doc:    minimal + "[deploy.health_check]\nretries = 0\n",
			prefix: "shipit.toml:7:11: ",
			msg:    []string{"deploy.health_check.retries must be at least 1, got 0"},
		},
		{
			name:   "stop_timeout not whole seconds",
			doc:    minimal + "[deploy]\nstop_timeout = \"1500ms\"\n",
			prefix: "shipit.toml:7:16: ",
			msg:    []string{"deploy.stop_timeout must be a whole number of seconds, got 1.5s"},
		},
		{
			name:   "empty health path",
			doc:    minimal + "[deploy.health_check]\npath = \"\"\n",
			prefix: "shipit.toml:7:8: ",
			msg:    []string{`deploy.health_check.path must start with "/"`},
		},
		{
			name:   "batch zero",
			doc:    minimal + "[deploy.rollout]\nbatch = 0\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{"deploy.rollout.batch: must be at least 1 host, got 0"},
			hint:   []string{`("25%")`, "every host at once"},
		},
		{
			name:   "batch number in quotes",
			doc:    minimal + "[deploy.rollout]\nbatch = \"3\"\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{`deploy.rollout.batch: invalid batch "3"`},
			hint:   []string{"batch = 3", `"3%"`},
		},
		{
			name:   "batch percentage out of range",
			doc:    minimal + "[deploy.rollout]\nbatch = \"0%\"\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{`between 1% and 100%, got "0%"`},
		},
		{
			name:   "batch fraction",
			doc:    minimal + "[deploy.rollout]\nbatch = \"12.5%\"\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{`invalid batch "12.5%"`},
		},
		{
			name:   "batch given a float",
			doc:    minimal + "[deploy.rollout]\nbatch = 0.5\n",
			prefix: "shipit.toml:7:9: ",
			msg:    []string{"wrong type for deploy.rollout.batch: got a float"},
			hint:   []string{"an integer number of hosts (2) or a percentage"},
		},
		{
			name:   "atomic given a string",
			doc:    minimal + "[deploy.rollout]\natomic = \"yes\"\n",
			prefix: "shipit.toml:7:10: ",
			msg:    []string{"wrong type for deploy.rollout.atomic: got a string"},
		},
		{
			name:   "unknown rollout key",
			doc:    minimal + "[deploy.rollout]\nbatches = 2\n",
			prefix: "shipit.toml:7:1: ",
			msg:    []string{`unknown key "batches" in [deploy.rollout]`},
			hint:   []string{`did you mean "batch"?`, "batch, wait, atomic"},
		},
		{
			name:   "unknown os",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nos = \"fedora\"\nhosts = [{ address = \"a\" }]\n",
			prefix: "shipit.toml:4:6: ",
			msg:    []string{`invalid stages.prod.os "fedora"`},
			hint:   []string{"valid values: ubuntu, debian, nixos, alpine"},
		},
		{
			name:   "os in another case",
			doc:    "[app]\nname = \"demo\"\n[stages.prod]\nos = \"Ubuntu\"\nhosts = [{ address = \"a\" }]\n",
			prefix: "shipit.toml:4:6: ",
			msg:    []string{`invalid stages.prod.os "Ubuntu"`},
		},
		{
			name:   "bad health port",
			doc:    minimal + "[deploy.health_check]\nport = 70000\n",
			prefix: "shipit.toml:7:8: ",
			msg:    []string{"deploy.health_check.port must be between 1 and 65535"},
			hint:   []string{"(default 8080)"},
		},
		{
			name:   "relative deploy_to",
			doc:    minimal + "[deploy]\ndeploy_to = \"apps\"\n",
			prefix: "shipit.toml:7:13: ",
			msg:    []string{"absolute path"},
		},
		{
			name:   "domain with a backtick",
			doc:    minimal + "[stages.prod.traefik]\ndomain = \"a.com`) || Host(`b.com\"\n",
			prefix: "shipit.toml:7:10: ",
			msg:    []string{"invalid stages.prod.traefik.domain"},
		},
		{
			name:   "accessory without image",
			doc:    minimal + "[accessories.db]\nhost = \"10.0.0.1\"\n",
			prefix: "shipit.toml:6:1: ",
			msg:    []string{`accessory "db" has no image`},
		},
		{
			name:   "bad env name",
			doc:    minimal + "[stages.prod.env]\n\"MY-VAR\" = \"x\"\n",
			prefix: "shipit.toml:7:1: ",
			msg:    []string{`invalid environment variable name "MY-VAR"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "shipit.toml")
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), tt.prefix) {
				t.Errorf("error %q does not start with %q", err, tt.prefix)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			for _, h := range tt.hint {
				if !strings.Contains(ce.Hint(), h) {
					t.Errorf("hint %q does not contain %q", ce.Hint(), h)
				}
			}
			if ce.File != "shipit.toml" || ce.Line < 1 || ce.Col < 1 {
				t.Errorf("bad position fields: %+v", ce)
			}
		})
	}
}

const full = `# every key
[app]
name = "shop"
repository = "git@example.com:acme/shop.git"
branch = "release"

[deploy]
deploy_to = "/srv/apps"
keep_releases = 3
build = "local"
web_service = "frontend"
compose_file = "compose.prod.yml"
drain_timeout = "20s"
stop_timeout = 45

[deploy.health_check]
path = "/up"
port = 3000
interval = "500ms"
retries = 30
timeout = "1m30s"
probe_timeout = 1
unhealthy_after = 2
cmd = "test -f /tmp/ready"

[deploy.rollout]
batch = "25%"
wait = "10s"
atomic = true

[stages.production]
user = "deploy"
port = 2222
os = "alpine"
proxy = "jump@bastion:22,jump2@inner"
hosts = [
  { address = "10.0.0.1" },
  { address = "10.0.0.2:2200", user = "root", port = 2200 },
]

[stages.production.env]
RAILS_ENV = "production"
WORKERS = "4"

[stages.production.traefik]
domain = "shop.example.com"
tls = true
acme_email = "ops@example.com"
image = "traefik:v3.1"

[[stages.staging.hosts]]
address = "staging.example.com"

[secrets]
recipients = ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", "ssh-ed25519 AAAA... ops"]

[accessories.db]
image = "postgres:16"
host = "10.0.0.3"
port = "5432:5432"
volumes = ["/var/lib/pg:/var/lib/postgresql/data"]
cmd = "postgres -c max_connections=200"

[accessories.db.env]
POSTGRES_PASSWORD = "secret"

[accessories.cache]
image = "redis:7"
`

func TestFullExample(t *testing.T) {
	c, err := Parse([]byte(full), "conf/shipit.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		App: App{Name: "shop", Repository: "git@example.com:acme/shop.git", Branch: "release"},
		Deploy: Deploy{
			DeployTo: "/srv/apps", KeepReleases: 3, Build: "local", WebService: "frontend", ComposeFile: "compose.prod.yml",
			DrainTimeout: Duration(20 * time.Second), StopTimeout: Duration(45 * time.Second),
			HealthCheck: HealthCheck{Path: "/up", Port: 3000, Interval: Duration(500 * time.Millisecond), Timeout: Duration(90 * time.Second),
				Retries: 30, ProbeTimeout: Duration(time.Second), UnhealthyAfter: 2, Cmd: Command{Shell: "test -f /tmp/ready"}},
			Rollout: Rollout{Batch: BatchPercent(25), Wait: Duration(10 * time.Second), Atomic: true},
			Verify:  defaultVerify,
		},
		Stages: map[string]*Stage{
			"production": {
				User: "deploy", Port: 2222, OS: "alpine", Proxy: "jump@bastion:22,jump2@inner",
				Hosts: []Host{{Address: "10.0.0.1"}, {Address: "10.0.0.2:2200", User: "root", Port: 2200}},
				Env:   map[string]string{"RAILS_ENV": "production", "WORKERS": "4"},
				Traefik: Traefik{Domain: "shop.example.com", TLS: true, ACMEEmail: "ops@example.com",
					Image: "traefik:v3.1"},
			},
			"staging": {Hosts: []Host{{Address: "staging.example.com"}}},
		},
		Secrets: Secrets{Recipients: []string{
			"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", "ssh-ed25519 AAAA... ops"}},
		Accessories: map[string]Accessory{
			"db": {Image: "postgres:16", Host: "10.0.0.3", Port: "5432:5432",
				Env:     map[string]string{"POSTGRES_PASSWORD": "secret"},
				Volumes: []string{"/var/lib/pg:/var/lib/postgresql/data"}, Cmd: "postgres -c max_connections=200"},
			"cache": {Image: "redis:7"},
		},
		Path: "conf/shipit.toml",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%#v\nwant\n%#v", c, want)
	}
	if got := c.AppPath(); got != "/srv/apps/shop" {
		t.Errorf("AppPath = %q", got)
	}
	st, err := c.Stage("staging")
	if err != nil || st.Hosts[0].Address != "staging.example.com" {
		t.Errorf("Stage(staging) = %+v, %v", st, err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The original shipit's defaults where it has one (health path, port,
	// interval, timeout, retries), ours for the rest.
	want := Deploy{DeployTo: "/var/deploy", KeepReleases: 5, Build: "remote", WebService: "web", ComposeFile: "docker-compose.yml",
		DrainTimeout: 0, StopTimeout: Duration(30 * time.Second),
		HealthCheck: HealthCheck{Path: "/health", Port: 8080, Interval: Duration(2 * time.Second), Timeout: Duration(60 * time.Second),
			Retries: 15, ProbeTimeout: Duration(5 * time.Second), UnhealthyAfter: 3},
		Rollout: Rollout{Batch: BatchPercent(100), Wait: 0, Atomic: false}, Verify: defaultVerify}
	if !reflect.DeepEqual(c.Deploy, want) {
		t.Errorf("deploy = %+v\nwant     %+v", c.Deploy, want)
	}
	if c.App.Branch != "main" {
		t.Errorf("branch = %q", c.App.Branch)
	}
	if c.AppPath() != "/var/deploy/demo" {
		t.Errorf("AppPath = %q", c.AppPath())
	}
	if st := c.Stages["prod"]; st.User != "" || st.Port != 0 || st.OS != "" {
		t.Errorf("stage user/port/os = %q/%d/%q: the SSH defaults are sshpool's (ssh_config, deploy, 22); os is detected", st.User, st.Port, st.OS)
	}
	if got := c.Deploy.Rollout.Batch.Size(7); got != 7 {
		t.Errorf("default batch size of 7 hosts = %d, want all 7", got)
	}
	// Explicit values that equal Go zero values are not replaced silently
	// when they are valid; partial tables keep their other defaults.
	c, err = Parse([]byte(minimal+"[deploy]\nstop_timeout = 0\ndrain_timeout = \"0s\"\n[deploy.health_check]\nport = 3000\n[deploy.rollout]\nwait = 0\n"), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	if hc := c.Deploy.HealthCheck; hc.Port != 3000 || hc.Path != "/health" || hc.Retries != 15 || hc.Interval != DefaultHealthInterval ||
		hc.Timeout != DefaultHealthTimeout || hc.ProbeTimeout != DefaultProbeTimeout || hc.UnhealthyAfter != 3 {
		t.Errorf("health_check = %+v", hc)
	}
	if c.Deploy.StopTimeout != 0 || c.Deploy.DrainTimeout != 0 {
		t.Errorf("explicit zero stop/drain timeouts = %s/%s, want 0s/0s", c.Deploy.StopTimeout, c.Deploy.DrainTimeout)
	}
}

func TestStage(t *testing.T) {
	c, err := Parse([]byte(minimal+"[stages.staging]\nhosts = [{ address = \"b\" }]\n[stages.canary]\nhosts = [{ address = \"c\" }]\n"), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.Stage("prod"); err != nil || s.Hosts[0].Address != "10.0.0.1" {
		t.Fatalf("Stage(prod) = %+v, %v", s, err)
	}
	_, err = c.Stage("stagng")
	var se *UnknownStageError
	if !errors.As(err, &se) {
		t.Fatalf("err = %T %v", err, err)
	}
	if want := `unknown stage "stagng" (shipit.toml defines: canary, prod, staging)`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if h := se.Hint(); !strings.Contains(h, `did you mean "staging"?`) || !strings.Contains(h, "canary, prod, staging") {
		t.Errorf("hint %q", h)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "shipit.toml")
	if err := os.WriteFile(p, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Path != p || c.App.Name != "demo" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	_, err = Load(filepath.Join(dir, "nope.toml"))
	var ce *Error
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), filepath.Join(dir, "nope.toml")+": cannot read") || ce.Hint() == "" {
		t.Fatalf("Load(missing) = %v", err)
	}
	// A positioned error names the file as given.
	if err := os.WriteFile(p, []byte("[app]\nnam = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2:1: ") {
		t.Fatalf("Load(bad) = %v", err)
	}
}

var defaultVerify = Verify{MaxErrorRate: DefaultMaxErrorRate, MinRequests: DefaultMinRequests, Interval: DefaultVerifyInterval}

func TestVerifySection(t *testing.T) {
	base := "[app]\nname = \"x\"\n[stages.p]\nhosts = [{ address = \"h\" }]\n[deploy.verify]\n"
	c, err := Parse([]byte(base+"window = \"2m\"\nmax_error_rate = 0.05\nmax_p95_ratio = 2.0\nmin_requests = 10\nrequire_traffic = true\nrequire_metrics = true\ninterval = 2\n"), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Verify{Window: Duration(2 * time.Minute), MaxErrorRate: 0.05, MaxP95Ratio: 2, MinRequests: 10, RequireTraffic: true, RequireMetrics: true, Interval: Duration(2 * time.Second)}
	if c.Deploy.Verify != want {
		t.Errorf("verify = %+v, want %+v", c.Deploy.Verify, want)
	}
	for in, msg := range map[string]string{
		"max_error_rate = 2\n":  "shipit.toml:6:18: deploy.verify.max_error_rate must be between 0 and 1, got 2",
		"max_p95_ratio = 0.5\n": "shipit.toml:6:17: deploy.verify.max_p95_ratio must be 0 or at least 1, got 0.5",
		"min_requests = -1\n":   "shipit.toml:6:16: deploy.verify.min_requests must not be negative, got -1",
		"window = \"soon\"\n":   "shipit.toml:6:10: deploy.verify.window",
		"windw = \"2m\"\n":      "shipit.toml:6:1: unknown key",
	} {
		_, err := Parse([]byte(base+in), "shipit.toml")
		if err == nil || !strings.HasPrefix(err.Error(), msg) {
			t.Errorf("%q: %v, want %q...", in, err, msg)
		}
	}
}
