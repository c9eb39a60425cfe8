// Package layout_test holds the test of the layout's one rule (see
// docs/architecture.md): every top-level folder is a layer, and a package
// imports only packages of its own layer or of the layers below it.
package layout_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const (
	mod     = "github.com/shipit-dev/shipit"
	luaPkg  = "github.com/yuin/gopher-lua"
	luaPkgs = luaPkg + "/"
)

// layers, top to bottom: a package may depend on its own layer and the
// ones below. cmd/ (and the tools under scripts/ and e2e/) is the CLI;
// app/ the application (host selection, fan-out, rollouts, the terminal
// UI); runtime/ and builtins/ the Lua host and its modules, with recipes/
// (the embedded Lua); internal/ the domain, which knows nothing of Lua;
// sshpool/ the SSH connections, which know nothing of deploys.
var layers = []struct {
	name    string
	folders []string
}{
	{"cli", []string{"cmd", "scripts", "e2e"}},
	{"application", []string{"app"}},
	{"lua", []string{"runtime", "builtins", "recipes"}},
	{"domain", []string{"internal"}},
	{"ssh", []string{"sshpool"}},
}

// level is the layer of a package of this module (0 = top), or -1 for the
// module's root package (this test) and packages of other modules.
func level(path string) int {
	rest, ok := strings.CutPrefix(path, mod+"/")
	if !ok {
		return -1
	}
	for i, l := range layers {
		for _, f := range l.folders {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				return i
			}
		}
	}
	return -2
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func isLua(path string) bool { return path == luaPkg || strings.HasPrefix(path, luaPkgs) }

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		from := level(p.ImportPath)
		if from == -2 {
			t.Errorf("%s is in no layer: put it under one of the layers' folders (docs/architecture.md)", p.ImportPath)
			continue
		}
		if from == -1 {
			continue // the module's root: this test
		}
		for _, imp := range p.Imports {
			if isLua(imp) && layers[from].name != "lua" {
				t.Errorf("%s imports %s: only runtime/ and builtins/ may import gopher-lua", p.ImportPath, imp)
			}
		}
		for _, dep := range p.Deps {
			if to := level(dep); to >= 0 && to < from {
				t.Errorf("%s (%s layer) depends on %s (%s layer, above it): arrows point down only",
					p.ImportPath, layers[from].name, dep, layers[to].name)
			}
		}
	}
}
