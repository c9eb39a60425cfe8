package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/dotenv"
	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/runtime"
)

// ConfigCmd manages plain (non-secret) environment kept on the hosts in
// shared/config.env. Values take effect on the next deploy.
type ConfigCmd struct {
	Set   ConfigSetCmd   `cmd:"" help:"Set KEY=VALUE on every host of a stage (next deploy applies it)."`
	Unset ConfigUnsetCmd `cmd:"" help:"Remove keys from every host of a stage."`
	List  ConfigListCmd  `cmd:"" help:"Show the effective environment per host and where each key comes from."`
}

// ConfigSetCmd sets values.
type ConfigSetCmd struct {
	hostFlags
	Pairs []string `arg:"" help:"KEY=VALUE pairs (the value may contain '=')."`
}

// ConfigUnsetCmd removes keys.
type ConfigUnsetCmd struct {
	hostFlags
	Keys []string `arg:"" help:"Keys to remove."`
}

// ConfigListCmd shows the merged environment.
type ConfigListCmd struct {
	hostFlags
	Reveal bool `help:"Show secret values instead of ***."`
}

// badPair is a malformed KEY=VALUE argument.
func badPair(arg, why string) error {
	return hint.New(fmt.Sprintf("%q: %s", arg, why),
		"write KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit); quote the whole pair for your shell")
}

func parsePairs(args []string) (map[string]string, []string, error) {
	vals := map[string]string{}
	var order []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, nil, badPair(a, "missing '='")
		}
		if !dotenv.ValidKey(k) {
			return nil, nil, badPair(a, fmt.Sprintf("invalid key %q", k))
		}
		if !utf8.ValidString(v) {
			return nil, nil, hint.New(fmt.Sprintf("the value of %s is not valid UTF-8", k),
				"env values are text: encode binary data (base64) before setting it")
		}
		if _, dup := vals[k]; !dup {
			order = append(order, k)
		}
		vals[k] = v
	}
	return vals, order, nil
}

// eachHost runs fn on every selected host in parallel; emit prints a line
// under the host's name. It fails naming the hosts that failed.
func (g *Globals) eachHost(f hostFlags, fn func(ctx context.Context, c remote.Conn, appPath string, emit func(string)) error) error {
	s, err := g.open(f)
	if err != nil {
		return err
	}
	defer s.Close()
	appPath := s.Env.Config.AppPath()
	results := s.Fleet.Each(g.ctx, func(ctx context.Context, h orchestrator.Host, c remote.Conn) orchestrator.Result {
		emit := func(l string) { s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Info, Text: l}) }
		err := fn(ctx, c, appPath, emit)
		if err != nil {
			s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Warn, Text: err.Error()})
		}
		return orchestrator.Result{Err: err}
	})
	return orchestrator.FailedOn(results)
}

func (c *ConfigSetCmd) Run(g *Globals) error {
	vals, order, err := parsePairs(c.Pairs)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return badPair("", "nothing to set")
	}
	if sec, _ := g.stageSecrets(c.Stage); sec != nil {
		for _, k := range order {
			if _, ok := sec[k]; ok {
				fmt.Fprintf(g.stderr, "shipit: warning: %s is also a secret of %s; the secret's value wins\n", k, c.Stage)
			}
		}
	}
	return g.eachHost(c.hostFlags, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
		// Under the host's config lock: an overlapping `config set`
		// reads what this one wrote, and loses nothing.
		err := envsync.UpdateConfig(ctx, conn, appPath, func(cur map[string]string) (bool, error) {
			for k, v := range vals {
				cur[k] = v
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		emit("set " + strings.Join(order, ", ") + " (applied on the next deploy)")
		return nil
	})
}

func (c *ConfigUnsetCmd) Run(g *Globals) error {
	for _, k := range c.Keys {
		if !dotenv.ValidKey(k) {
			return badPair(k, "invalid key")
		}
	}
	return g.eachHost(c.hostFlags, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
		var gone, missing []string
		err := envsync.UpdateConfig(ctx, conn, appPath, func(cur map[string]string) (bool, error) {
			gone, missing = nil, nil
			for _, k := range c.Keys {
				if _, ok := cur[k]; ok {
					delete(cur, k)
					gone = append(gone, k)
				} else {
					missing = append(missing, k)
				}
			}
			return len(gone) > 0, nil
		})
		if err != nil {
			return err
		}
		if len(gone) > 0 {
			emit("unset " + strings.Join(gone, ", ") + " (applied on the next deploy)")
		}
		if len(missing) > 0 {
			emit("not set by `shipit config`: " + strings.Join(missing, ", "))
		}
		return nil
	})
}

func (c *ConfigListCmd) Run(g *Globals) error {
	sec, secErr := g.stageSecrets(c.Stage)
	p, err := g.loadProject()
	if err != nil {
		return err
	}
	st, err := p.Cfg.Stage(c.Stage)
	if err != nil {
		return err
	}
	if secErr != nil {
		fmt.Fprintf(g.stderr, "shipit: warning: secrets of %s not shown: %v\n", c.Stage, secErr)
	}
	var mu sync.Mutex
	out := map[string][]string{}
	err = g.eachHost(c.hostFlags, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
		cfg, err := envsync.ReadConfig(ctx, conn, appPath)
		if err != nil {
			return err
		}
		var lines []string
		for _, m := range envsync.Merge(st.Env, cfg, sec) {
			v := m.Value
			if m.Source == envsync.FromSecrets && !c.Reveal {
				v = "***"
			}
			line := fmt.Sprintf("%-24s %-12s %s", m.Key, m.Source, strings.ReplaceAll(v, "\n", `\n`))
			if len(m.Shadows) > 0 {
				line += "   (overrides " + strings.Join(m.Shadows, ", ") + ")"
			}
			lines = append(lines, line)
		}
		mu.Lock()
		out[conn.Name()] = lines
		mu.Unlock()
		return nil
	})
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(g.stdout, "%s (precedence: shipit.toml < config < secret)\n", n)
		if len(out[n]) == 0 {
			fmt.Fprintln(g.stdout, "  (empty)")
		}
		for _, l := range out[n] {
			fmt.Fprintln(g.stdout, "  "+l)
		}
	}
	return err
}
