package layout_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every path docs/architecture.md names exists, and every `Type.Method` or
// `func` it names next to a file is defined in that file.
func TestArchitectureDocPaths(t *testing.T) {
	b, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if n := strings.Count(doc, "\n"); n > 120 {
		t.Errorf("docs/architecture.md has %d lines, keep it to 120", n)
	}
	paths := regexp.MustCompile("`((?:cmd|app|runtime|builtins|recipes|internal|sshpool|scripts|e2e|docs)/[^`]*)`").FindAllStringSubmatch(doc, -1)
	if len(paths) < 20 {
		t.Fatalf("found only %d paths in docs/architecture.md", len(paths))
	}
	for _, m := range paths {
		p := strings.TrimSuffix(m[1], "/")
		if strings.Contains(p, "NAME") || strings.Contains(p, "/X/") {
			continue // placeholders of the "new command/module" recipes
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("docs/architecture.md names %s, which does not exist", m[1])
		}
	}
	// "`file.go`: `Type.Method`" and "`file.go`'s `Name`": the name is defined there.
	defs := regexp.MustCompile("`([a-z/_]+\\.go)`(?::|'s) `(?:([A-Z][A-Za-z]*)\\.)?([A-Za-z]+)`").FindAllStringSubmatch(doc, -1)
	if len(defs) < 6 {
		t.Fatalf("found only %d file: name pairs in docs/architecture.md", len(defs))
	}
	for _, m := range defs {
		src, err := os.ReadFile(m[1])
		if err != nil {
			t.Errorf("%s: %v", m[1], err)
			continue
		}
		name := m[3]
		re := regexp.MustCompile(`(?m)^(func (\([^)]*\) )?` + name + `\(|type ` + name + ` |\t` + name + ` )`)
		if !re.Match(src) {
			t.Errorf("docs/architecture.md says %s defines %s, it does not", m[1], name)
		}
	}
}
