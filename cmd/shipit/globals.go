package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/ui"
	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/internal/secrets"
	"github.com/shipit-dev/shipit/recipes"
	"github.com/shipit-dev/shipit/runtime"
	"github.com/shipit-dev/shipit/sshpool"
)

// Globals are flags every command takes, plus what commands share.
type Globals struct {
	Config            string   `short:"c" default:"shipit.toml" type:"path" help:"Path to shipit.toml (shipit.lua is read from the same directory)."`
	Verbose           bool     `short:"v" help:"Show every remote command and its output."`
	Trace             bool     `help:"Show where the time goes: every remote operation with its duration, and per step the time on the host against the time here."`
	AcceptNewHostKeys bool     `help:"Trust and record host keys not yet in known_hosts (like StrictHostKeyChecking=accept-new). Changed keys are always refused."`
	KnownHosts        []string `help:"known_hosts file(s) to check host keys against (default ~/.ssh/known_hosts)." type:"path"`
	SSHKey            []string `short:"i" name:"ssh-key" help:"SSH private key file(s) to try after the agent and ~/.ssh keys." type:"path"`
	Identity          string   `help:"age identity for secrets (age key file or SSH private key); after SHIPIT_AGE_KEY and ~/.config/shipit/keys/<app>.key." type:"path"`
	SSHConfig         string   `help:"ssh_config file (default ~/.ssh/config)." type:"path"`
	SSHStats          bool     `hidden:"" help:"Print SSH handshakes per host at exit (benchmarks)."`

	ctx            context.Context
	stdout, stderr io.Writer
	pools          []*sshpool.Pool
	redact         func(string) string
}

// project is everything a command needs that comes from the project dir.
type project struct {
	cfg     *config.Config
	dir     string
	scripts []*runtime.Compiled
}

func (g *Globals) loadProject() (*project, error) {
	p, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	for _, r := range recipes.All() {
		c, err := runtime.Compile(runtime.Script{Name: r.Name, Source: r.Source})
		if err != nil {
			return nil, fmt.Errorf("embedded recipe: %w", err)
		}
		p.scripts = append(p.scripts, c)
	}
	luaPath := filepath.Join(p.dir, "shipit.lua")
	if src, err := os.ReadFile(luaPath); err == nil {
		c, err := runtime.Compile(runtime.Script{Name: relName(luaPath), Source: src})
		if err != nil {
			return nil, err
		}
		p.scripts = append(p.scripts, c)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	// Evaluate once without a host so script errors surface before any
	// connection is made.
	s, err := runtime.NewState(p.env(g, ""), nil, p.scripts...)
	if err != nil {
		return nil, err
	}
	s.Close()
	return p, nil
}

// loadConfig loads shipit.toml only: the project of a command that runs
// no Lua (exec), which then pays no recipe compilation.
func (g *Globals) loadConfig() (*project, error) {
	cfg, err := config.Load(relName(g.Config))
	if err != nil {
		return nil, err
	}
	return &project{cfg: cfg, dir: filepath.Dir(g.Config)}, nil
}

func relName(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !filepath.IsAbs(r) && len(r) < len(p) {
			return r
		}
	}
	return p
}

func (p *project) env(g *Globals, stage string) *runtime.Env {
	return &runtime.Env{Config: p.cfg, Stage: stage, ProjectDir: p.dir, Verbose: g.Verbose, Trace: g.Trace, Sink: runtime.Discard}
}

func (g *Globals) pool() *sshpool.Pool {
	p := sshpool.New(sshpool.Config{
		KnownHostsFiles:   g.KnownHosts,
		AcceptNewHostKeys: g.AcceptNewHostKeys,
		IdentityFiles:     g.SSHKey,
		SSHConfigPath:     g.SSHConfig,
		DefaultUser:       "deploy", // the original shipit's default
	})
	g.pools = append(g.pools, p)
	return p
}

// printStats reports SSH handshakes per host (proof of one connection per
// host per command).
func (g *Globals) printStats() {
	if !g.SSHStats {
		return
	}
	for _, p := range g.pools {
		hs := p.Handshakes()
		keys := make([]string, 0, len(hs))
		for k := range hs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(g.stderr, "ssh handshakes %s: %d\n", k, hs[k])
		}
	}
}

// hostFlags select the hosts of a stage; every command that touches
// hosts embeds them.
type hostFlags struct {
	Stage    string   `short:"s" required:"" help:"Stage (a [stages.NAME] of shipit.toml)."`
	Hosts    []string `name:"hosts" sep:"," placeholder:"PATTERN" help:"Only the stage's hosts whose address matches a PATTERN (shell glob, e.g. '10.0.0.*'); comma-separated."`
	Parallel int      `default:"0" help:"At most N hosts at once (0: all)."`
}

// session is one command's run against the selected hosts of a stage:
// the project, the Lua environment, the hosts and the printer.
type session struct {
	proj  *project
	env   *runtime.Env
	fleet *orchestrator.Fleet
	out   *ui.Printer
	pool  *sshpool.Pool
}

// open loads the project, decrypts the stage's secrets (for redaction and
// deploys) and selects the hosts.
func (g *Globals) open(f hostFlags) (*session, error) {
	p, err := g.loadProject()
	if err != nil {
		return nil, err
	}
	return g.openProject(p, f)
}

// openNoLua is open for a command that runs no Lua on its hosts (exec):
// shipit.lua and the recipes are neither compiled nor evaluated.
func (g *Globals) openNoLua(f hostFlags) (*session, error) {
	p, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	return g.openProject(p, f)
}

// openProject selects the hosts of p and decrypts the stage's secrets.
func (g *Globals) openProject(p *project, f hostFlags) (*session, error) {
	hosts, err := orchestrator.Select(p.cfg, f.Stage, f.Hosts)
	if err != nil {
		return nil, err
	}
	s := g.session(p, f.Stage, hosts, f.Parallel)
	if err := refuseShortSecrets(s.env); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// session prepares running on hosts of stage.
func (g *Globals) session(p *project, stage string, hosts []orchestrator.Host, parallel int) *session {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	printer := ui.New(g.stdout, g.Verbose, names)
	env := p.env(g, stage)
	env.Sink = printer
	g.loadSecrets(p, stage, env)
	printer.Redact = g.redact
	pool := g.pool()
	return &session{proj: p, env: env, out: printer, pool: pool,
		fleet: &orchestrator.Fleet{Hosts: hosts, Dialer: orchestrator.SSH(pool), Parallel: parallel, Sink: printer}}
}

// close releases the connections.
func (s *session) close() { s.pool.Close() }

// task runs a Lua task on every selected host.
func (s *session) task(ctx context.Context, t orchestrator.Task) []orchestrator.Result {
	return s.fleet.RunTask(ctx, s.taskOf(t))
}

// taskOf completes t with the session's Lua environment and scripts.
func (s *session) taskOf(t orchestrator.Task) orchestrator.Task {
	t.Env, t.Scripts = s.env, s.proj.scripts
	return t
}

// plan0 is the plan the scripts declare (no host).
func (s *session) plan0() *runtime.Plan {
	st, err := runtime.NewState(s.env, nil, s.proj.scripts...)
	if err != nil {
		return &runtime.Plan{}
	}
	defer st.Close()
	return st.Plan
}

// secretStore is the project's encrypted secrets directory.
func (p *project) secretStore() *secrets.Store {
	return &secrets.Store{Dir: filepath.Join(p.dir, ".shipit", "secrets"), Recipients: p.cfg.Secrets.Recipients, App: p.cfg.App.Name}
}

// loadSecrets decrypts the stage's secrets, if it has any, into env and
// turns on redaction of their values in everything shipit prints. A
// failure is kept in env.SecretsErr: a deploy needs the secrets, other
// commands do without.
func (g *Globals) loadSecrets(p *project, stage string, env *runtime.Env) {
	store := p.secretStore()
	if !store.Exists(stage) {
		return
	}
	hash, err := store.Hash(stage)
	if err != nil {
		env.SecretsErr = err
		return
	}
	env.SecretsHash = hash
	ids, err := secrets.Identities(p.cfg.App.Name, g.Identity)
	if err != nil {
		env.SecretsErr = err
		return
	}
	vals, _, err := store.Load(stage, ids)
	if err != nil {
		env.SecretsErr = err
		return
	}
	env.Secrets = vals
	g.redact = redactor(vals)
	env.Redact = g.redact
}

// stageSecrets returns the stage's decrypted secrets (nil when it has none).
func (g *Globals) stageSecrets(stage string) (map[string]string, error) {
	p, err := g.loadProject()
	if err != nil {
		return nil, err
	}
	env := p.env(g, stage)
	g.loadSecrets(p, stage, env)
	return env.Secrets, env.SecretsErr
}

// minSecretLen: shorter values would turn ordinary output into stars;
// secrets refuses them.
const minSecretLen = secrets.MinValueLen

// redactor replaces every known secret value (and each line of a
// multi-line one) with ***, longest first.
func redactor(vals map[string]string) func(string) string {
	var needles []string
	for _, v := range vals {
		for _, part := range append([]string{v}, strings.Split(v, "\n")...) {
			if len(strings.TrimSpace(part)) >= minSecretLen {
				needles = append(needles, part)
			}
		}
	}
	if len(needles) == 0 {
		return nil
	}
	sort.Slice(needles, func(i, j int) bool { return len(needles[i]) > len(needles[j]) })
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, "***")
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
