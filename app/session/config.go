package session

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/envsync"
	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/runtime"
)

// EachHost runs fn on every selected host in parallel; emit prints a line
// under the host's name. It fails naming the hosts that failed.
func (s *Session) EachHost(ctx context.Context, fn func(ctx context.Context, c remote.Conn, appPath string, emit func(string)) error) error {
	appPath := s.Env.Config.AppPath()
	results := s.Fleet.Each(ctx, func(ctx context.Context, h orchestrator.Host, c remote.Conn) orchestrator.Result {
		emit := func(l string) { s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Info, Text: l}) }
		err := fn(ctx, c, appPath, emit)
		if err != nil {
			s.Out.Emit(runtime.Event{Host: h.Name, Kind: runtime.Warn, Text: err.Error()})
		}
		return orchestrator.Result{Err: err}
	})
	return orchestrator.FailedOn(results)
}

// ConfigSet sets vals in every host's shared/config.env (keys in order
// for the message); a key that is also a secret of the stage is warned
// about: the secret wins.
func (s *Session) ConfigSet(ctx context.Context, vals map[string]string, order []string) error {
	for _, k := range order {
		if _, ok := s.Env.Secrets[k]; ok {
			fmt.Fprintf(s.Proj.opts.Stderr, "shipit: warning: %s is also a secret of %s; the secret's value wins\n", k, s.Env.Stage)
		}
	}
	return s.EachHost(ctx, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
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

// ConfigUnset removes keys from every host's shared/config.env.
func (s *Session) ConfigUnset(ctx context.Context, keys []string) error {
	return s.EachHost(ctx, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
		var gone, missing []string
		err := envsync.UpdateConfig(ctx, conn, appPath, func(cur map[string]string) (bool, error) {
			gone, missing = nil, nil
			for _, k := range keys {
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

// ConfigList prints, per host, the environment a deploy would write and
// where each key comes from; secret values are *** unless reveal.
func (s *Session) ConfigList(ctx context.Context, w io.Writer, reveal bool) error {
	if s.Env.SecretsErr != nil {
		fmt.Fprintf(s.Proj.opts.Stderr, "shipit: warning: secrets of %s not shown: %v\n", s.Env.Stage, s.Env.SecretsErr)
	}
	stageEnv := s.Env.Config.Stages[s.Env.Stage].Env
	var mu sync.Mutex
	out := map[string][]string{}
	err := s.EachHost(ctx, func(ctx context.Context, conn remote.Conn, appPath string, emit func(string)) error {
		cfg, err := envsync.ReadConfig(ctx, conn, appPath)
		if err != nil {
			return err
		}
		var lines []string
		for _, m := range envsync.Merge(stageEnv, cfg, s.Env.Secrets) {
			v := m.Value
			if m.Source == envsync.FromSecrets && !reveal {
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
		fmt.Fprintf(w, "%s (precedence: shipit.toml < config < secret)\n", n)
		if len(out[n]) == 0 {
			fmt.Fprintln(w, "  (empty)")
		}
		for _, l := range out[n] {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return err
}
