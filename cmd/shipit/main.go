// Command shipit deploys Docker Compose apps to plain VMs over SSH with
// zero downtime. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kong"

	"github.com/shipit-dev/shipit/app/ui"
	_ "github.com/shipit-dev/shipit/builtins/all"
	"github.com/shipit-dev/shipit/internal/hint"
)

var version = "dev"

// CLI is the command tree; each command lives in its own file with a Run
// method that takes the shared globals.
type CLI struct {
	Globals
	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Deploy   DeployCmd   `cmd:"" help:"Deploy the committed HEAD of app.branch (shipit.toml) to every host of a stage."`
	Rollback RollbackCmd `cmd:"" help:"Switch back to the previous (or a named) release."`
	Releases ReleasesCmd `cmd:"" help:"List releases per host (* current, < rollback target)."`
	Run      RunCmd      `cmd:"" help:"Run a Lua task (built-in or from shipit.lua) on every host."`
	Exec     ExecCmd     `cmd:"" help:"Run an ad-hoc shell command on every host."`
	Tasks    TasksCmd    `cmd:"" help:"List every step and task in run order, with their hooks."`

	Init      InitCmd      `cmd:"" help:"Scaffold shipit.toml, shipit.lua and editor support for this project."`
	Setup     SetupCmd     `cmd:"" help:"Provision the hosts of a stage (idempotent)."`
	Doctor    DoctorCmd    `cmd:"" help:"Preflight checklist for every host of a stage."`
	Logs      LogsCmd      `cmd:"" help:"Logs of the current release from every host."`
	App       AppCmd       `cmd:"" help:"Run commands in the app's containers."`
	Accessory AccessoryCmd `cmd:"" help:"Manage accessories (databases, caches...) from [accessories]."`
	Monitor   MonitorCmd   `cmd:"" help:"Live dashboard of every host of a stage."`
	Secrets   SecretsCmd   `cmd:"" help:"Age-encrypted secrets kept in the repository."`
	ConfigCmd ConfigCmd    `cmd:"" name:"config" help:"Plain environment kept on the hosts."`
	Lock      LockCmd      `cmd:"" help:"Inspect or release the per-host deploy lock."`
	Recover   RecoverCmd   `cmd:"" help:"Settle what an interrupted deploy or rollback left on the hosts."`
	Remove    RemoveCmd    `cmd:"" help:"Remove the app from the hosts of a stage: every release's containers and images, and its directory (asks first; accessories only when asked; Traefik stays)."`
	Audit     AuditCmd     `cmd:"" help:"What shipit did on the hosts (who, when, which release, how it ended), from their audit logs."`

	Version VersionCmd `cmd:"" help:"Print the version."`
}

func main() {
	tuneGC()
	stop := startCPUProfile(os.Getenv("SHIPIT_CPUPROFILE"))
	code := Main(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the CLI and returns the exit code; tests call it directly.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	// kong exits after --help; turn that into a return so nothing runs after
	// the help text and tests can call Main.
	type exitCode int
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	var cli CLI
	parser, err := newParser(&cli, stdout, stderr, func(c int) { panic(exitCode(c)) })
	if err != nil {
		fmt.Fprintln(stderr, "shipit: internal error:", err)
		return 2
	}
	if err := checkArgs(args); err != nil {
		ui.PrintError(stderr, err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		ui.PrintError(stderr, err)
		return 2
	}
	if kctx == nil || kctx.Command() == "" {
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli.Globals.ctx = ctx
	cli.Globals.stdout, cli.Globals.stderr = stdout, stderr
	err = kctx.Run(&cli.Globals)
	cli.Globals.printStats()
	if err != nil && cli.Globals.redact != nil {
		err = &redactedError{err: err, redact: cli.Globals.redact}
	}
	if err != nil {
		ui.PrintError(stderr, err)
		return 1
	}
	return 0
}

// newParser builds the command line parser for cli; exit replaces
// os.Exit after --help and usage errors.
func newParser(cli *CLI, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("shipit"),
		kong.Description("Zero-downtime Docker Compose deploys over SSH, scripted in Lua."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.Vars{"version": "shipit " + version},
		kong.PostBuild(addExamples),
		kong.Help(helpPrinter),
	)
}

// checkArgs refuses an argument that is not valid UTF-8: kong decodes
// values through JSON, which would silently replace its invalid bytes with
// U+FFFD (a config or secret value would be stored altered). The message
// names the KEY of a KEY=VALUE or --flag=value argument, never the value.
func checkArgs(args []string) error {
	for i, a := range args {
		if utf8.ValidString(a) {
			continue
		}
		what := fmt.Sprintf("argument %d", i+1)
		if k, _, ok := strings.Cut(a, "="); ok && k != "" && utf8.ValidString(k) && !strings.ContainsFunc(k, unicode.IsControl) {
			what = fmt.Sprintf("the value of %s (argument %d)", k, i+1)
		}
		return hint.New(what+" is not valid UTF-8",
			"shipit's arguments are text: encode binary data (base64, for example) before passing it")
	}
	return nil
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.stdout, "shipit", version)
	return nil
}

// redactedError hides secret values in an error's text, keeping its hint.
type redactedError struct {
	err    error
	redact func(string) string
}

func (e *redactedError) Error() string { return e.redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
func (e *redactedError) Hint() string  { return e.redact(hint.Of(e.err)) }
