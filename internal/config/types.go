// Package config loads shipit.toml strictly: unknown keys, wrong types and
// missing required keys are errors with file:line:col and a hint.
package config

// Config is shipit.toml. Field tags are the TOML keys (contract: compatible
// with the original shipit).
type Config struct {
	App         App                  `toml:"app"`
	Deploy      Deploy               `toml:"deploy"`
	Stages      map[string]*Stage    `toml:"stages"`
	Secrets     Secrets              `toml:"secrets"`
	Accessories map[string]Accessory `toml:"accessories"`

	// Path is the file the config was read from (not a TOML key).
	Path string `toml:"-"`
}

// App is [app].
type App struct {
	Name       string `toml:"name"`       // required
	Repository string `toml:"repository"` // optional, informational
	Branch     string `toml:"branch"`     // default "main"
}

// Deploy is [deploy].
type Deploy struct {
	DeployTo     string      `toml:"deploy_to"`     // default /var/deploy
	KeepReleases int         `toml:"keep_releases"` // default 5, must be >= 1
	Build        string      `toml:"build"`         // "remote" (default) | "local"
	WebService   string      `toml:"web_service"`   // default "web"
	ComposeFile  string      `toml:"compose_file"`  // default docker-compose.yml
	DrainTimeout Duration    `toml:"drain_timeout"` // 0 (default): automatic, see docs/configuration.md
	StopTimeout  Duration    `toml:"stop_timeout"`  // default 30s, whole seconds
	HealthCheck  HealthCheck `toml:"health_check"`
	Rollout      Rollout     `toml:"rollout"`
	Verify       Verify      `toml:"verify"`
}

// Verify is [deploy.verify]: after the switch, shipit watches the new
// release through Traefik's metrics for Window and rolls it back when a
// gate fails. Window 0 (the default) turns it off.
type Verify struct {
	Window         Duration `toml:"window"`          // e.g. "2m"; 0: no verify
	MaxErrorRate   float64  `toml:"max_error_rate"`  // highest 5xx share, default 0.01
	MaxP95Ratio    float64  `toml:"max_p95_ratio"`   // p95 against the previous release's; 0 (default): no latency gate
	MinRequests    int      `toml:"min_requests"`    // below: "not enough traffic", default 100
	RequireTraffic bool     `toml:"require_traffic"` // not enough traffic fails (default: warns)
	RequireMetrics bool     `toml:"require_metrics"` // a Traefik without metrics fails (default: warns and skips)
	Interval       Duration `toml:"interval"`        // one progress line per host every interval, default 5s
}

// HealthCheck is [deploy.health_check]: the web service's Docker health
// check, which gates every deploy and keeps Traefik's rotation healthy.
type HealthCheck struct {
	Path           string   `toml:"path"`            // default "/health"
	Port           int      `toml:"port"`            // default 8080
	Interval       Duration `toml:"interval"`        // between probes, default 2s
	Timeout        Duration `toml:"timeout"`         // overall wait for a new release to be healthy, default 60s
	Retries        int      `toml:"retries"`         // start period = interval x retries, default 15
	ProbeTimeout   Duration `toml:"probe_timeout"`   // one probe, default 5s
	UnhealthyAfter int      `toml:"unhealthy_after"` // consecutive failed probes, default 3
	Cmd            Command  `toml:"cmd"`             // optional; replaces the HTTP probe: a shell string or an exec list
}

// Rollout is [deploy.rollout]: how the hosts of a stage take turns.
type Rollout struct {
	Batch  Batch    `toml:"batch"`  // hosts at once; default all
	Wait   Duration `toml:"wait"`   // pause between batches, default 0
	Atomic bool     `toml:"atomic"` // all hosts end on the new release, or all on the previous one
}

// Stage is [stages.NAME]: where and how to deploy.
type Stage struct {
	User    string            `toml:"user"`  // default: ~/.ssh/config, else "deploy"
	Port    int               `toml:"port"`  // default: ~/.ssh/config or 22
	OS      string            `toml:"os"`    // ubuntu, debian, nixos, alpine; default: detected by setup
	Proxy   string            `toml:"proxy"` // jump host(s): user@host[:port][,user@host...]
	Hosts   []Host            `toml:"hosts"` // required, at least one
	Env     map[string]string `toml:"env"`
	Traefik Traefik           `toml:"traefik"`
}

// Host is one element of a stage's hosts array.
type Host struct {
	Address string `toml:"address"` // required: host or host:port
	User    string `toml:"user"`    // overrides the stage's
	Port    int    `toml:"port"`    // overrides the stage's
	Primary bool   `toml:"primary"` // once-per-stage hooks run here (default: the first host)
}

// Traefik is [stages.NAME.traefik]: routing for the web service.
type Traefik struct {
	Domain    string `toml:"domain"`
	TLS       bool   `toml:"tls"`
	ACMEEmail string `toml:"acme_email"`
	Image     string `toml:"image"`
	// AllowUnrouted lets a deploy with a domain proceed on a host where no
	// Traefik runs (a proxy of the user's own routes it), with a warning.
	AllowUnrouted bool `toml:"allow_unrouted"`
}

// Secrets is [secrets]: who can decrypt the encrypted .env.
type Secrets struct {
	Recipients []string `toml:"recipients"`
}

// Accessory is [accessories.NAME]: a long-lived service (database, cache)
// deployed beside the app, outside the release cycle.
type Accessory struct {
	Image   string            `toml:"image"`
	Host    string            `toml:"host"`
	Port    string            `toml:"port"`
	Env     map[string]string `toml:"env"`
	Volumes []string          `toml:"volumes"`
	Cmd     string            `toml:"cmd"`
}
