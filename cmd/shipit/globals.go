package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/app/session"
	"github.com/shipit-dev/shipit/app/vault"
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

// options are what the global flags say about a command's run.
func (g *Globals) options() session.Options {
	return session.Options{Config: g.Config, Verbose: g.Verbose, Trace: g.Trace, Identity: g.Identity, Stdout: g.stdout, Stderr: g.stderr,
		SSH: g.sshConfig()}
}

// vault is what the secrets commands take of the global flags.
func (g *Globals) vault() *vault.Env {
	return vault.NewEnv(g.ctx, g.Config, g.Identity, os.Stdin, g.stdout, g.stderr)
}

func (g *Globals) loadProject() (*session.Project, error) { return session.Load(g.options()) }

func relName(p string) string { return session.RelName(p) }

func (g *Globals) sshConfig() sshpool.Config {
	return sshpool.Config{
		KnownHostsFiles:   g.KnownHosts,
		AcceptNewHostKeys: g.AcceptNewHostKeys,
		IdentityFiles:     g.SSHKey,
		SSHConfigPath:     g.SSHConfig,
		DefaultUser:       "deploy", // the original shipit's default
	}
}

// printStats reports SSH handshakes per host (proof of one connection per
// host per command).
func (g *Globals) printStats() {
	if !g.SSHStats {
		return
	}
	for _, p := range g.pools {
		hs := p.Handshakes()
		keys := slices.Sorted(maps.Keys(hs))
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

// open loads the project, decrypts the stage's secrets (for redaction and
// deploys) and selects the hosts.
func (g *Globals) open(f hostFlags) (*session.Session, error) {
	return g.openWith(session.Load, f, true)
}

// openNoLua is open for a command that runs no Lua on its hosts (exec):
// shipit.lua and the recipes are neither compiled nor evaluated.
func (g *Globals) openNoLua(f hostFlags) (*session.Session, error) {
	return g.openWith(session.LoadConfig, f, false)
}

// openWith loads the project with load and opens a session on f's hosts.
// warmFirst: the recipes run many commands per host, so the first one
// already starts the warm shell (sshpool.Config.WarmFirst).
func (g *Globals) openWith(load func(session.Options) (*session.Project, error), f hostFlags, warmFirst bool) (*session.Session, error) {
	o := g.options()
	o.SSH.WarmFirst = warmFirst
	p, err := load(o)
	if err != nil {
		return nil, err
	}
	s, err := p.Open(f.Stage, f.Hosts, f.Parallel)
	if err != nil {
		return nil, err
	}
	g.track(s)
	return s, nil
}

// on prepares running on hosts of stage, already selected.
func (g *Globals) on(p *session.Project, stage string, hosts []orchestrator.Host, parallel int) *session.Session {
	s := p.On(stage, hosts, parallel)
	g.track(s)
	return s
}

// track keeps what main needs of a session: its pool (--ssh-stats) and
// its redaction of secrets (errors).
func (g *Globals) track(s *session.Session) {
	g.pools = append(g.pools, s.Pool)
	if s.Env.Redact != nil {
		g.redact = s.Env.Redact
	}
}

// stageSecrets returns the stage's decrypted secrets (nil when it has none).
func (g *Globals) stageSecrets(stage string) (map[string]string, error) {
	p, err := g.loadProject()
	if err != nil {
		return nil, err
	}
	env := p.Env(stage)
	p.LoadSecrets(stage, env)
	if env.Redact != nil {
		g.redact = env.Redact
	}
	return env.Secrets, env.SecretsErr
}
