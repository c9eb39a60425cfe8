package main

import (
	"bytes"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// examples are shown under each command's --help. They live here, by
// command path, rather than as Help() methods on every command type, so a
// test can check that each command has some and that they parse.
var examples = map[string][]string{
	"deploy": {
		"shipit deploy -s production --plan   # what would change, changing nothing",
		"shipit deploy -s production --batch 25% --wait 30s",
	},
	"rollback": {
		"shipit rollback -s production",
		"shipit rollback -s production --release 20261125-204041 --plan",
	},
	"releases": {"shipit releases -s production"},
	"run": {
		"shipit run -s production db:migrate   # a task of shipit.lua",
		"shipit run -s production doctor:disk --hosts 'web1*'   # one built-in check",
	},
	"exec": {
		"shipit exec -s production -- uptime",
		"shipit exec -s production --parallel 1 -- 'df -h /var/lib/docker'",
	},
	"tasks":   {"shipit tasks"},
	"init":    {"shipit init", "shipit init --host 203.0.113.10 --user deploy --domain app.example.com --yes"},
	"setup":   {"shipit setup -s production", "shipit setup -s production --install-docker"},
	"doctor":  {"shipit doctor -s production"},
	"logs":    {"shipit logs -s production web -n 100", "shipit logs -s production --since 10m -f"},
	"monitor": {"shipit monitor -s production", "shipit monitor -s production --once"},
	"app exec": {
		"shipit app exec -s production -- bin/rails db:migrate:status",
		"shipit app exec -s production -t --hosts web1 -- sh",
	},
	"accessory boot":    {"shipit accessory boot -s production", "shipit accessory boot -s production db"},
	"accessory stop":    {"shipit accessory stop -s production redis"},
	"accessory restart": {"shipit accessory restart -s production redis"},
	"accessory logs":    {"shipit accessory logs -s production db -n 50"},
	"accessory details": {"shipit accessory details -s production"},
	"accessory remove":  {"shipit accessory remove -s production redis", "shipit accessory remove -s production redis --volumes"},
	"secrets init":      {"shipit secrets init --write"},
	"secrets set": {
		"shipit secrets set -s production SMTP_USER=app@example.com",
		"pass show shop/db-url | shipit secrets set -s production DATABASE_URL   # value from stdin",
	},
	"secrets unset": {"shipit secrets unset -s production SMTP_USER"},
	"secrets list":  {"shipit secrets list -s production", "shipit secrets list -s production --reveal"},
	"secrets edit":  {"shipit secrets edit -s production"},
	"secrets rekey": {"shipit secrets rekey"},
	"config set":    {"shipit config set -s production LOG_LEVEL=debug WORKERS=4"},
	"config unset":  {"shipit config unset -s production LOG_LEVEL"},
	"config list":   {"shipit config list -s production"},
	"lock status":   {"shipit lock status -s production"},
	"lock release":  {"shipit lock release -s production --hosts web1"},
	"recover":       {"shipit recover -s production"},
	"remove": {
		"shipit remove -s staging   # asks first; keeps accessories and Traefik",
		"shipit remove -s staging --yes --accessories   # no question; accessories too, their volumes kept",
	},
	"audit":   {"shipit audit -s production -n 20"},
	"version": {"shipit version"},
}

// addExamples puts each command's examples into its detailed help.
func addExamples(k *kong.Kong) error {
	for _, n := range commandNodes(k.Model.Node) {
		if ex := examples[commandPath(n)]; len(ex) > 0 {
			n.Detail = "Examples:\n\n  " + strings.Join(ex, "\n  ")
		}
	}
	return nil
}

// commandNodes lists every command below n, depth first.
func commandNodes(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if c.Type == kong.CommandNode {
			out = append(out, c)
			out = append(out, commandNodes(c)...)
		}
	}
	return out
}

// commandPath is "app exec" for `shipit app exec`.
func commandPath(n *kong.Node) string {
	var parts []string
	for ; n != nil && n.Type == kong.CommandNode; n = n.Parent {
		parts = append([]string{n.Name}, parts...)
	}
	return strings.Join(parts, " ")
}

// helpPrinter is kong's, with exact usage lines: a command whose
// arguments come after -- (exec, app exec) shows the --, where kong would
// put them before [flags] as if no -- were needed.
func helpPrinter(o kong.HelpOptions, ctx *kong.Context) error {
	var buf bytes.Buffer
	out := ctx.Stdout
	ctx.Stdout = &buf
	err := kong.DefaultHelpPrinter(o, ctx)
	ctx.Stdout = out
	_, werr := io.WriteString(out, exactUsage(buf.String(), ctx.Model.Node))
	if err == nil {
		err = werr
	}
	return err
}

// exactUsage rewrites, in a help text, the usage summary of every command
// with a passthrough argument: "exec --stage=STRING <command> ... [flags]"
// becomes "exec --stage=STRING [flags] -- <command> ...".
func exactUsage(text string, root *kong.Node) string {
	type fix struct{ from, to string }
	var fixes []fix
	for _, n := range commandNodes(root) {
		for _, p := range n.Positional {
			if !p.Passthrough {
				continue
			}
			from := n.Summary()
			arg := " " + p.Summary()
			to := strings.Replace(from, arg, "", 1)
			if !strings.HasSuffix(to, " [flags]") {
				to += " [flags]"
			}
			fixes = append(fixes, fix{from, to + " --" + arg})
		}
	}
	// "app exec ..." contains "exec ...": the longer first.
	sort.Slice(fixes, func(i, j int) bool { return len(fixes[i].from) > len(fixes[j].from) })
	for _, f := range fixes {
		text = strings.ReplaceAll(text, f.from, f.to)
	}
	return text
}
