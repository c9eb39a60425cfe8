package session

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/accessory"
	"github.com/shipit-dev/shipit/internal/config"
)

// AccessoryError lists the accessories whose action failed; Errs keeps the
// causes so their hints reach the user.
type AccessoryError struct {
	Action string
	Failed []string
	Errs   []error
}

func (e *AccessoryError) Unwrap() []error { return e.Errs }

func (e *AccessoryError) Error() string {
	if len(e.Errs) == 1 {
		return fmt.Sprintf("accessory %s %s: %v", e.Action, e.Failed[0], e.Errs[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "accessory %s failed for %s:", e.Action, strings.Join(e.Failed, ", "))
	for i, err := range e.Errs {
		fmt.Fprintf(&b, "\n%s: %v", e.Failed[i], err)
	}
	return b.String()
}

// AccessoryPick is which accessories an accessory command acts on, and
// where each lives.
type AccessoryPick struct {
	Stage   string
	Names   []string                       // sorted
	HostsOf map[string][]orchestrator.Host // per accessory
	All     []orchestrator.Host            // every host of any of them
}

// PickAccessories validates the named accessory (or all of them) and finds
// its hosts, before connecting anywhere.
func PickAccessories(cfg *config.Config, name, stage string, patterns []string) (AccessoryPick, error) {
	var pk AccessoryPick
	var err error
	if pk.Stage, err = orchestrator.PickStage(cfg, stage); err != nil {
		return pk, err
	}
	if pk.Names, err = orchestrator.AccessoryNames(cfg, name); err != nil {
		return pk, err
	}
	pk.HostsOf = map[string][]orchestrator.Host{}
	for _, n := range pk.Names {
		if _, err := accessory.Build(cfg.App.Name, pk.Stage, n, cfg.Accessories[n]); err != nil {
			return pk, err
		}
		if pk.HostsOf[n], err = orchestrator.AccessoryHosts(cfg, pk.Stage, cfg.Accessories[n].Host, patterns); err != nil {
			return pk, err
		}
		pk.All = append(pk.All, pk.HostsOf[n]...)
	}
	return pk, nil
}

// Accessories runs accessory:<action> for each picked accessory on the
// hosts it lives on. Accessories go one after the other, hosts in
// parallel; with concurrent (logs -f) all at once.
func (s *Session) Accessories(ctx context.Context, pk AccessoryPick, action string, params map[string]string, concurrent bool) error {
	if err := s.RefuseShortSecrets(); err != nil {
		return err
	}
	names, hostsOf := pk.Names, pk.HostsOf
	run := func(name string) error {
		fleet := *s.Fleet
		fleet.Hosts = hostsOf[name]
		ps := map[string]string{"accessory": name, "multi": strconv.FormatBool(len(names) > 1)}
		for k, v := range params {
			ps[k] = v
		}
		return orchestrator.Failed(fleet.RunTask(ctx, orchestrator.Task{Name: "accessory:" + action, Env: s.Env, Scripts: s.Proj.Scripts, Params: ps}))
	}
	errs := make([]error, len(names))
	if concurrent {
		done := make(chan struct{})
		for i, n := range names {
			go func() {
				defer func() { done <- struct{}{} }()
				errs[i] = run(n)
			}()
		}
		for range names {
			<-done
		}
	} else {
		for i, n := range names {
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				continue
			}
			errs[i] = run(n)
		}
	}
	ae := &AccessoryError{Action: action}
	for i, err := range errs {
		if err != nil {
			ae.Failed = append(ae.Failed, names[i])
			ae.Errs = append(ae.Errs, err)
		}
	}
	if len(ae.Errs) > 0 {
		return ae
	}
	return nil
}
