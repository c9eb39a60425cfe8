package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/dotenv"
	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/internal/fleet"
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
	Stage string   `short:"s" required:"" help:"Stage whose hosts to change."`
	Pairs []string `arg:"" help:"KEY=VALUE pairs (the value may contain '=')."`
}

// ConfigUnsetCmd removes keys.
type ConfigUnsetCmd struct {
	Stage string   `short:"s" required:"" help:"Stage whose hosts to change."`
	Keys  []string `arg:"" help:"Keys to remove."`
}

// ConfigListCmd shows the merged environment.
type ConfigListCmd struct {
	Stage  string `short:"s" required:"" help:"Stage to show."`
	Reveal bool   `help:"Show secret values instead of ***."`
}

// BadPairError is a malformed KEY=VALUE argument.
type BadPairError struct{ Arg, Why string }

func (e *BadPairError) Error() string { return fmt.Sprintf("%q: %s", e.Arg, e.Why) }
func (e *BadPairError) Hint() string {
	return "write KEY=VALUE with KEY made of letters, digits and _ (not starting with a digit); quote the whole pair for your shell"
}

func parsePairs(args []string) (map[string]string, []string, error) {
	vals := map[string]string{}
	var order []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, nil, &BadPairError{Arg: a, Why: "missing '='"}
		}
		if !dotenv.ValidKey(k) {
			return nil, nil, &BadPairError{Arg: a, Why: "invalid key " + k}
		}
		if _, dup := vals[k]; !dup {
			order = append(order, k)
		}
		vals[k] = v
	}
	return vals, order, nil
}

// eachHost runs fn on every host of the stage in parallel, printing errors
// per host; it fails if any host failed.
func (g *Globals) eachHost(stage string, fn func(c remote.Conn, appPath string, emit func(string)) error) error {
	run, printer, pool, err := g.stageRun(stage, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := run.Env.Config.Stages[stage]
	appPath := run.Env.Config.AppPath()
	var wg sync.WaitGroup
	errs := make([]error, len(st.Hosts))
	for i, t := range fleet.Targets(st) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := st.Hosts[i].Address
			emit := func(s string) { printer.Emit(runtime.Event{Host: name, Kind: runtime.Info, Text: s}) }
			c, err := pool.Get(g.ctx, t)
			if err == nil {
				err = fn(c, appPath, emit)
			}
			if err != nil {
				printer.Emit(runtime.Event{Host: name, Kind: runtime.Warn, Text: err.Error()})
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	var failed []string
	var all []error
	for i, e := range errs {
		if e != nil {
			failed = append(failed, st.Hosts[i].Address)
			all = append(all, e)
		}
	}
	if len(failed) > 0 {
		return &ExecError{Failed: failed, Errs: all}
	}
	return nil
}

func (c *ConfigSetCmd) Run(g *Globals) error {
	vals, order, err := parsePairs(c.Pairs)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return &BadPairError{Arg: "", Why: "nothing to set"}
	}
	if sec, _ := g.stageSecrets(c.Stage); sec != nil {
		for _, k := range order {
			if _, ok := sec[k]; ok {
				fmt.Fprintf(g.stderr, "shipit: warning: %s is also a secret of %s; the secret's value wins\n", k, c.Stage)
			}
		}
	}
	return g.eachHost(c.Stage, func(conn remote.Conn, appPath string, emit func(string)) error {
		cur, err := envsync.ReadConfig(g.ctx, conn, appPath)
		if err != nil {
			return err
		}
		for k, v := range vals {
			cur[k] = v
		}
		if err := envsync.WriteConfig(g.ctx, conn, appPath, cur); err != nil {
			return err
		}
		emit("set " + strings.Join(order, ", ") + " (applied on the next deploy)")
		return nil
	})
}

func (c *ConfigUnsetCmd) Run(g *Globals) error {
	for _, k := range c.Keys {
		if !dotenv.ValidKey(k) {
			return &BadPairError{Arg: k, Why: "invalid key"}
		}
	}
	return g.eachHost(c.Stage, func(conn remote.Conn, appPath string, emit func(string)) error {
		cur, err := envsync.ReadConfig(g.ctx, conn, appPath)
		if err != nil {
			return err
		}
		var gone, missing []string
		for _, k := range c.Keys {
			if _, ok := cur[k]; ok {
				delete(cur, k)
				gone = append(gone, k)
			} else {
				missing = append(missing, k)
			}
		}
		if len(gone) > 0 {
			if err := envsync.WriteConfig(g.ctx, conn, appPath, cur); err != nil {
				return err
			}
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
	st, err := p.cfg.Stage(c.Stage)
	if err != nil {
		return err
	}
	if secErr != nil {
		fmt.Fprintf(g.stderr, "shipit: warning: secrets of %s not shown: %v\n", c.Stage, secErr)
	}
	var mu sync.Mutex
	out := map[string][]string{}
	err = g.eachHost(c.Stage, func(conn remote.Conn, appPath string, emit func(string)) error {
		cfg, err := envsync.ReadConfig(g.ctx, conn, appPath)
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
