// Package session is one command's run: the project (shipit.toml, the
// embedded recipes and shipit.lua, compiled once), the stage's decrypted
// secrets, the selected hosts with their connections, and the printer.
// Commands in cmd/shipit open one and call its methods; the orchestrator
// fans out, the recipes do the work.
package session

import (
	"context"
	"errors"
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

// Options are what the global flags say about every command's run.
type Options struct {
	Config   string // path to shipit.toml; shipit.lua is read beside it
	Verbose  bool
	Trace    bool
	Identity string // age identity for secrets (--identity)
	SSH      sshpool.Config
	Stdout   io.Writer
	Stderr   io.Writer // warnings
}

// Project is everything a command needs that comes from the project dir.
type Project struct {
	Cfg     *config.Config
	Dir     string
	Scripts []*runtime.Compiled
	opts    Options
}

// Load reads shipit.toml, compiles the embedded recipes and shipit.lua, and
// evaluates them once without a host, so that a script error surfaces
// before any connection is made.
func Load(o Options) (*Project, error) {
	p, err := LoadConfig(o)
	if err != nil {
		return nil, err
	}
	dir := p.Dir
	for _, r := range recipes.All() {
		c, err := runtime.Compile(runtime.Script{Name: r.Name, Source: r.Source})
		if err != nil {
			return nil, fmt.Errorf("embedded recipe: %w", err)
		}
		p.Scripts = append(p.Scripts, c)
	}
	luaPath := filepath.Join(dir, "shipit.lua")
	if src, err := os.ReadFile(luaPath); err == nil {
		c, err := runtime.Compile(runtime.Script{Name: RelName(luaPath), Source: src})
		if err != nil {
			return nil, err
		}
		p.Scripts = append(p.Scripts, c)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	s, err := runtime.NewState(p.Env(""), nil, p.Scripts...)
	if err != nil {
		return nil, err
	}
	s.Close()
	return p, nil
}

// LoadConfig reads shipit.toml only: the project of a command that runs no
// Lua (exec), which then pays no recipe compilation, and which a broken
// shipit.lua does not stand in the way of.
func LoadConfig(o Options) (*Project, error) {
	cfg, err := config.Load(RelName(o.Config))
	if err != nil {
		return nil, err
	}
	return &Project{Cfg: cfg, Dir: filepath.Dir(o.Config), opts: o}, nil
}

// RelName is p relative to the working directory when that is shorter:
// how file names appear in messages.
func RelName(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !filepath.IsAbs(r) && len(r) < len(p) {
			return r
		}
	}
	return p
}

// Env is a fresh Lua environment of the project for stage, printing nowhere.
func (p *Project) Env(stage string) *runtime.Env {
	return &runtime.Env{Config: p.Cfg, Stage: stage, ProjectDir: p.Dir, Verbose: p.opts.Verbose, Trace: p.opts.Trace, Sink: runtime.Discard}
}

// Plan is the pipeline the scripts declare (no host).
func (p *Project) Plan() *runtime.Plan {
	st, err := runtime.NewState(p.Env(""), nil, p.Scripts...)
	if err != nil {
		return &runtime.Plan{}
	}
	defer st.Close()
	return st.Plan
}

// SecretStore is the project's encrypted secrets directory.
func (p *Project) SecretStore() *secrets.Store {
	return &secrets.Store{Dir: filepath.Join(p.Dir, ".shipit", "secrets"), Recipients: p.Cfg.Secrets.Recipients, App: p.Cfg.App.Name}
}

// LoadSecrets decrypts the stage's secrets, if it has any, into env and
// turns on redaction of their values (env.Redact). A failure is kept in
// env.SecretsErr: a deploy needs the secrets, other commands do without.
func (p *Project) LoadSecrets(stage string, env *runtime.Env) {
	store := p.SecretStore()
	if !store.Exists(stage) {
		return
	}
	hash, err := store.Hash(stage)
	if err != nil {
		env.SecretsErr = err
		return
	}
	env.SecretsHash = hash
	ids, err := secrets.Identities(p.Cfg.App.Name, p.opts.Identity)
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
	env.Redact = Redactor(vals)
}

// Redactor replaces every known secret value (and each line of a
// multi-line one) with ***, longest first; nil when there is none to hide.
func Redactor(vals map[string]string) func(string) string {
	var needles []string
	for _, v := range vals {
		for _, part := range append([]string{v}, strings.Split(v, "\n")...) {
			if len(strings.TrimSpace(part)) >= secrets.MinValueLen {
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
	return strings.NewReplacer(pairs...).Replace
}

// Session is one command's run against the selected hosts of a stage.
type Session struct {
	Proj  *Project
	Env   *runtime.Env
	Fleet *orchestrator.Fleet
	Out   *ui.Printer
	Pool  *sshpool.Pool
}

// Open selects the stage's hosts (all, or those matching patterns) and
// prepares running on them: the stage's secrets decrypted, the printer,
// the connection pool (nothing is dialled yet).
func (p *Project) Open(stage string, patterns []string, parallel int) (*Session, error) {
	hosts, err := orchestrator.Select(p.Cfg, stage, patterns)
	if err != nil {
		return nil, err
	}
	s := p.On(stage, hosts, parallel)
	if err := s.RefuseShortSecrets(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// On prepares running on hosts of stage, already selected.
func (p *Project) On(stage string, hosts []orchestrator.Host, parallel int) *Session {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	printer := ui.New(p.opts.Stdout, p.opts.Verbose, names)
	env := p.Env(stage)
	env.Sink = printer
	p.LoadSecrets(stage, env)
	printer.Redact = env.Redact
	pool := sshpool.New(p.opts.SSH)
	return &Session{Proj: p, Env: env, Out: printer, Pool: pool,
		Fleet: &orchestrator.Fleet{Hosts: hosts, Dialer: orchestrator.SSH(pool), Parallel: parallel, Sink: printer}}
}

// Close releases the connections.
func (s *Session) Close() { s.Pool.Close() }

// RefuseShortSecrets fails a command that uses the stage's secrets when
// one of them is too short to be redacted from what it prints.
func (s *Session) RefuseShortSecrets() error {
	var short *secrets.ShortValueError
	if errors.As(s.Env.SecretsErr, &short) {
		return short
	}
	return nil
}

// Task runs a Lua task on every selected host.
func (s *Session) Task(ctx context.Context, t orchestrator.Task) []orchestrator.Result {
	return s.Fleet.RunTask(ctx, s.TaskOf(t))
}

// TaskOf completes t with the session's Lua environment and scripts.
func (s *Session) TaskOf(t orchestrator.Task) orchestrator.Task {
	t.Env, t.Scripts = s.Env, s.Proj.Scripts
	return t
}
