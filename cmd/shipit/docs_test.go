package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"mvdan.cc/sh/v3/syntax"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/recipes"
	"github.com/shipit-dev/shipit/runtime"
)

// Every example in README.md and docs/*.md is checked, so the docs cannot
// drift from the code:
//   - ```toml: a complete shipit.toml, loaded strictly; "```toml fragment"
//     is merged into a minimal config first; "```toml error" must fail;
//   - ```lua: a shipit.lua, compiled and evaluated after the embedded
//     recipes (hooks must name real steps);
//   - ```sh: every line that runs shipit must parse as a command line,
//     and every `make X` must name a Makefile target.

type block struct {
	file, lang, info string
	line             int
	body             string
}

var fence = regexp.MustCompile("^```(\\S*)\\s*(.*)$")

func docBlocks(t *testing.T) []block {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append([]string{"../../README.md"}, files...)
	var out []block
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *block
		for i, l := range strings.Split(string(b), "\n") {
			m := fence.FindStringSubmatch(l)
			switch {
			case m != nil && cur == nil:
				cur = &block{file: strings.TrimPrefix(f, "../../"), lang: m[1], info: m[2], line: i + 1}
			case strings.HasPrefix(l, "```") && cur != nil:
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.body += l + "\n"
			}
		}
	}
	return out
}

const baseApp = "[app]\nname = \"demo\"\n"
const baseStage = "[stages.production]\nhosts = [{ address = \"203.0.113.10\" }]\n"

func TestDocExamples(t *testing.T) {
	blocks := docBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found only %d code blocks in the docs", len(blocks))
	}
	targets := makeTargets(t)
	counts := map[string]int{}
	for _, b := range blocks {
		where := b.file + ":" + strconv.Itoa(b.line)
		switch b.lang {
		case "toml":
			counts["toml"]++
			checkTOML(t, where, b)
		case "lua":
			counts["lua"]++
			checkLua(t, where, b.body)
		case "sh", "bash", "console":
			counts["sh"]++
			checkShell(t, where, b.body, targets)
		}
	}
	t.Logf("checked examples: %v", counts)
}

func checkTOML(t *testing.T, where string, b block) {
	src := b.body
	if strings.HasPrefix(b.info, "fragment") {
		if !regexp.MustCompile(`(?m)^\[app\]`).MatchString(src) {
			src = baseApp + src
		}
		if !regexp.MustCompile(`(?m)^\[\[?stages\.[^.\]]+\]\]?\s*$`).MatchString(src) && !strings.Contains(src, "hosts") {
			// A fragment naming [stages.X.traefik] alone still needs X's hosts.
			if m := regexp.MustCompile(`(?m)^\[stages\.([^.\]]+)\.`).FindStringSubmatch(src); m != nil {
				src += "[stages." + m[1] + "]\nhosts = [{ address = \"203.0.113.10\" }]\n"
			} else {
				src += baseStage
			}
		}
	}
	_, err := config.Parse([]byte(src), where)
	if strings.HasPrefix(b.info, "error") {
		if err == nil {
			t.Errorf("%s: the example is shown as an error, but it loads", where)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: example shipit.toml does not load: %v", where, err)
	}
}

func checkLua(t *testing.T, where, src string) {
	cfg, err := config.Parse([]byte(baseApp+baseStage), "shipit.toml")
	if err != nil {
		t.Fatal(err)
	}
	var scripts []*runtime.Compiled
	for _, r := range recipes.All() {
		c, err := runtime.Compile(runtime.Script{Name: r.Name, Source: r.Source})
		if err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, c)
	}
	c, err := runtime.Compile(runtime.Script{Name: where, Source: []byte(src)})
	if err != nil {
		t.Errorf("%s: example does not compile: %v", where, err)
		return
	}
	s, err := runtime.NewState(&runtime.Env{Config: cfg, Stage: "production", Sink: runtime.Discard}, nil, append(scripts, c)...)
	if err != nil {
		t.Errorf("%s: example shipit.lua does not load: %v", where, err)
		return
	}
	s.Close()
}

func checkShell(t *testing.T, where, src string, targets map[string]bool) {
	f, err := syntax.NewParser().Parse(strings.NewReader(stripPrompts(src)), where)
	if err != nil {
		t.Errorf("%s: not a valid shell example: %v", where, err)
		return
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		words := make([]string, len(call.Args))
		for i, w := range call.Args {
			words[i] = wordText(w)
		}
		switch name := words[0]; {
		case name == "make":
			for _, w := range words[1:] {
				if !strings.HasPrefix(w, "-") && !strings.Contains(w, "=") && !targets[w] {
					t.Errorf("%s: `make %s`: the Makefile has no such target", where, w)
				}
			}
		case name == "shipit" || strings.HasSuffix(name, "/shipit"):
			checkCommandLine(t, where, words[1:])
		}
		return true
	})
}

// stripPrompts drops a leading "$ " (console transcripts).
func stripPrompts(src string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "$ ")
	}
	return strings.Join(lines, "\n")
}

// wordText is a word as the command sees it; expansions stay as written.
func wordText(w *syntax.Word) string {
	var b strings.Builder
	var parts func(ps []syntax.WordPart)
	parts = func(ps []syntax.WordPart) {
		for _, p := range ps {
			switch x := p.(type) {
			case *syntax.Lit:
				b.WriteString(x.Value)
			case *syntax.SglQuoted:
				b.WriteString(x.Value)
			case *syntax.DblQuoted:
				parts(x.Parts)
			case *syntax.ParamExp:
				b.WriteString("$" + x.Param.Value)
			default:
				b.WriteString("…")
			}
		}
	}
	parts(w.Parts)
	return b.String()
}

func checkCommandLine(t *testing.T, where string, args []string) {
	for _, a := range args {
		if (strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">")) || strings.HasPrefix(a, "[") {
			return // a placeholder like <stage>: a synopsis, not a command line
		}
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("shipit"), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(args); err != nil {
		t.Errorf("%s: `shipit %s`: %v", where, strings.Join(args, " "), err)
	}
}

func makeTargets(t *testing.T) map[string]bool {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9_-]*):`).FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	return targets
}
