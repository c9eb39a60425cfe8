package main

import (
	"io"
	"strings"
	"testing"
)

// Every command's --help has examples, and each example is a command line
// shipit accepts (its flags and arguments parse).
func TestEveryCommandHasExamplesThatParse(t *testing.T) {
	var cli CLI
	k, err := newParser(&cli, io.Discard, io.Discard, func(c int) { t.Fatalf("exit %d", c) })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range commandNodes(k.Model.Node) {
		if len(n.Children) > 0 {
			continue // a group (app, secrets...): its commands have the examples
		}
		path := commandPath(n)
		seen[path] = true
		ex := examples[path]
		if len(ex) == 0 || len(ex) > 2 {
			t.Errorf("shipit %s: %d examples, want 1 or 2", path, len(ex))
		}
		if !strings.Contains(n.Detail, "Examples:") {
			t.Errorf("shipit %s --help shows no examples", path)
		}
		for _, line := range ex {
			args := exampleArgs(line)
			if len(args) < 2 || args[0] != "shipit" || strings.Join(args[1:1+len(strings.Fields(path))], " ") != path {
				t.Errorf("example %q is not a `shipit %s` command", line, path)
				continue
			}
			var cli CLI
			p, err := newParser(&cli, io.Discard, io.Discard, func(c int) { t.Fatalf("%q: exit %d", line, c) })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Parse(args[1:]); err != nil {
				t.Errorf("example %q does not parse: %v", line, err)
			}
		}
	}
	for path := range examples {
		if !seen[path] {
			t.Errorf("examples for %q, which is no command", path)
		}
	}
}

// exampleArgs splits an example as a shell would: the shipit command of a
// pipeline, without its comment, with '...' quoting.
func exampleArgs(line string) []string {
	line, _, _ = strings.Cut(line, " #")
	if i := strings.LastIndex(line, "| "); i >= 0 {
		line = line[i+2:]
	}
	var args []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// The usage line of a command whose arguments follow -- shows the --.
func TestExactUsage(t *testing.T) {
	var cli CLI
	k, err := newParser(&cli, io.Discard, io.Discard, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	in := "Usage: shipit app exec --stage=STRING <command> ... [flags]\n  exec --stage=STRING <command> ... [flags]\n"
	want := "Usage: shipit app exec --stage=STRING [flags] -- <command> ...\n  exec --stage=STRING [flags] -- <command> ...\n"
	if got := exactUsage(in, k.Model.Node); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
