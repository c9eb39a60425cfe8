package main

import (
	"os"

	"golang.org/x/term"

	"github.com/shipit-dev/shipit/app/scaffold"
)

// InitCmd scaffolds shipit.toml, shipit.lua and editor support from what
// it can detect in the project directory.
type InitCmd struct {
	Name       string   `help:"App name (default: the directory's name)."`
	Repository string   `help:"Repository URL (default: git remote origin)."`
	Branch     string   `help:"Branch to deploy (default: the checked-out branch)."`
	WebService string   `help:"Compose service Traefik routes to (default: detected from the compose file)."`
	Port       int      `help:"Container port of the web service (default: detected, else 80)."`
	Host       []string `help:"Host address of the stage (repeatable)."`
	User       string   `help:"SSH user for the stage."`
	Stage      string   `default:"production" help:"Name of the stage to write."`
	Domain     string   `help:"Domain Traefik routes to the app."`
	Force      bool     `help:"Overwrite existing files."`
	Yes        bool     `short:"y" help:"Do not prompt, even on a terminal: take flags and detected values."`
}

func (c *InitCmd) Run(g *Globals) error {
	return scaffold.Init(scaffold.Options{
		Name: c.Name, Repository: c.Repository, Branch: c.Branch, WebService: c.WebService, Port: c.Port,
		Host: c.Host, User: c.User, Stage: c.Stage, Domain: c.Domain, Force: c.Force,
		Ask: !c.Yes && term.IsTerminal(int(os.Stdin.Fd())),
	}, g.Config, os.Stdin, g.stdout)
}
