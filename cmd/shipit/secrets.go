package main

import "github.com/shipit-dev/shipit/app/vault"

// SecretsCmd manages .shipit/secrets/<stage>.age. Decrypting commands use
// SHIPIT_AGE_KEY, the app's key file, then the global --identity (an age
// identity file or SSH private key).
type SecretsCmd struct {
	Init  SecretsInitCmd  `cmd:"" help:"Create your age key for this app and print its recipient."`
	Set   SecretsSetCmd   `cmd:"" help:"Set secrets of a stage: KEY=VALUE... (a bare KEY reads its value from stdin)."`
	Unset SecretsUnsetCmd `cmd:"" help:"Remove secrets of a stage."`
	List  SecretsListCmd  `cmd:"" help:"List the secrets of a stage (values masked unless --reveal)."`
	Edit  SecretsEditCmd  `cmd:"" help:"Edit the secrets of a stage in $EDITOR."`
	Rekey SecretsRekeyCmd `cmd:"" help:"Re-encrypt every stage's secrets to the current [secrets] recipients."`
}

// SecretsInitCmd creates the app's age identity.
type SecretsInitCmd struct {
	Force bool `help:"Replace an existing key (files encrypted only to it become unreadable)."`
	Write bool `help:"Add the recipient to [secrets] recipients in shipit.toml."`
}

func (c *SecretsInitCmd) Run(g *Globals) error {
	return vault.Init(g.vault(), vault.InitOptions(*c))
}

// SecretsSetCmd sets secrets.
type SecretsSetCmd struct {
	Stage string   `short:"s" required:"" help:"Stage whose secrets to change."`
	Pairs []string `arg:"" name:"KEY=VALUE" help:"Assignments; VALUE may contain '=' and newlines. A bare KEY reads its value from stdin (one trailing newline dropped), keeping it out of shell history."`
}

func (c *SecretsSetCmd) Run(g *Globals) error {
	return vault.Set(g.vault(), vault.SetOptions(*c))
}

// SecretsUnsetCmd removes secrets.
type SecretsUnsetCmd struct {
	Stage string   `short:"s" required:"" help:"Stage whose secrets to change."`
	Keys  []string `arg:"" name:"KEY" help:"Keys to remove."`
}

func (c *SecretsUnsetCmd) Run(g *Globals) error {
	return vault.Unset(g.vault(), vault.UnsetOptions(*c))
}

// SecretsListCmd lists secrets.
type SecretsListCmd struct {
	Stage  string `short:"s" required:"" help:"Stage whose secrets to list."`
	Reveal bool   `help:"Print the values (as env-file text) instead of ***."`
}

func (c *SecretsListCmd) Run(g *Globals) error {
	return vault.List(g.vault(), vault.ListOptions(*c))
}

// SecretsEditCmd edits secrets in $EDITOR.
type SecretsEditCmd struct {
	Stage string `short:"s" required:"" help:"Stage whose secrets to edit."`
}

func (c *SecretsEditCmd) Run(g *Globals) error {
	return vault.Edit(g.vault(), vault.EditOptions(*c))
}

// SecretsRekeyCmd re-encrypts every stage's file to the current recipients.
type SecretsRekeyCmd struct{}

func (c *SecretsRekeyCmd) Run(g *Globals) error {
	return vault.Rekey(g.vault(), vault.RekeyOptions(*c))
}
