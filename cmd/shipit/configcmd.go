package main

import "github.com/shipit-dev/shipit/internal/dotenv"

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

func (c *ConfigSetCmd) Run(g *Globals) error {
	vals, order, err := dotenv.ParsePairs(c.Pairs)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return dotenv.BadPair("", "nothing to set")
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.ConfigSet(g.ctx, vals, order)
}

func (c *ConfigUnsetCmd) Run(g *Globals) error {
	for _, k := range c.Keys {
		if !dotenv.ValidKey(k) {
			return dotenv.BadPair(k, "invalid key")
		}
	}
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.ConfigUnset(g.ctx, c.Keys)
}

func (c *ConfigListCmd) Run(g *Globals) error {
	s, err := g.open(c.hostFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.ConfigList(g.ctx, g.stdout, c.Reveal)
}
