package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/hint"
)

// RemoveCmd removes the app from the hosts of a stage by running the
// "remove" Lua task (recipes/remove.lua), then, when asked, its
// accessories (accessory:remove).
type RemoveCmd struct {
	hostFlags
	Yes         bool          `short:"y" help:"Remove without asking (scripts, CI). Without a terminal, remove refuses to run unless given."`
	Accessories bool          `help:"Also remove the app's accessories' containers (their volumes are kept)."`
	Volumes     bool          `help:"With --accessories: also delete the named volumes shipit created for them (their data is lost)."`
	LockWait    time.Duration `help:"If another shipit holds a host's lock, wait up to this long (e.g. 10m) instead of failing; it prints who holds it."`
}

func (c *RemoveCmd) Run(g *Globals) error {
	if c.Volumes && !c.Accessories {
		return hint.New("--volumes deletes accessories' volumes: it needs --accessories",
			"shipit remove -s "+c.Stage+" --accessories --volumes removes the accessories and their volumes")
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.Env.Config
	var accs []string
	for n := range cfg.Accessories {
		accs = append(accs, n)
	}
	sort.Strings(accs)
	if !c.Yes {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return hint.New("shipit remove asks for confirmation, and there is no terminal to ask on: nothing was removed",
				"pass --yes to remove without asking (scripts, CI)")
		}
		ok, err := c.confirm(g.stdout, bufio.NewReader(os.Stdin), cfg.App.Name, cfg.AppPath(), s.Fleet.Hosts, accs)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(g.stdout, "not removed: nothing changed")
			return nil
		}
	}
	if err := s.Remove(g.ctx, c.LockWait); err != nil {
		return err
	}
	switch {
	case len(accs) == 0:
	case !c.Accessories:
		fmt.Fprintf(g.stdout, "accessories kept: %s (`shipit remove -s %s --accessories` removes them)\n", strings.Join(accs, ", "), c.Stage)
	default:
		return runAccessories(g, accessoryTarget{Stage: c.Stage, Hosts: c.Hosts}, "remove",
			map[string]string{"volumes": strconv.FormatBool(c.Volumes)}, false)
	}
	return nil
}

// confirm says what will go and asks; only "y" or "yes" removes.
func (c *RemoveCmd) confirm(w io.Writer, r *bufio.Reader, app, appPath string, hosts []orchestrator.Host, accs []string) (bool, error) {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	fmt.Fprintf(w, "This removes app %s from stage %s (%d host(s): %s):\n", app, c.Stage, len(hosts), strings.Join(names, ", "))
	fmt.Fprintf(w, "  every release's containers and images, and %s (shared/.env included)\n", appPath)
	switch {
	case len(accs) == 0:
	case c.Volumes:
		fmt.Fprintf(w, "  accessories %s, and the volumes shipit created for them (their data is lost)\n", strings.Join(accs, ", "))
	case c.Accessories:
		fmt.Fprintf(w, "  accessories %s (their volumes are kept)\n", strings.Join(accs, ", "))
	default:
		fmt.Fprintf(w, "  (accessories %s are kept)\n", strings.Join(accs, ", "))
	}
	fmt.Fprintf(w, "Remove %s? [y/N] ", app)
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("reading the confirmation: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
