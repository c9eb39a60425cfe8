// Package layout_test holds the test of the import rules of the layout
// (see README "Layout"): which packages may depend on which.
package layout_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const (
	mod      = "github.com/shipit-dev/shipit"
	luaPkg   = "github.com/yuin/gopher-lua"
	luaPkgs  = luaPkg + "/"
	internal = mod + "/internal/"
)

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

// domain packages are internal/* except the orchestrator and the terminal
// UI, which sit between the CLI and the Lua runtime.
func isDomain(path string) bool {
	if !strings.HasPrefix(path, internal) {
		return false
	}
	rest := strings.TrimPrefix(path, internal)
	return !strings.HasPrefix(rest, "orchestrator") && !strings.HasPrefix(rest, "ui")
}

func TestImportRules(t *testing.T) {
	for _, p := range listPackages(t) {
		path := p.ImportPath
		inLuaLayer := strings.HasPrefix(path, mod+"/runtime") || strings.HasPrefix(path, mod+"/builtins/")
		for _, imp := range p.Imports {
			if isLua(imp) && !inLuaLayer {
				t.Errorf("%s imports %s: only runtime/ and builtins/ may import gopher-lua", path, imp)
			}
			if strings.HasPrefix(path, mod+"/cmd/") && strings.HasPrefix(imp, mod+"/builtins/") && imp != mod+"/builtins/all" {
				t.Errorf("%s imports %s: cmd/ registers the builtins through builtins/all and never uses one as a library", path, imp)
			}
		}
		for _, dep := range p.Deps {
			switch {
			case strings.HasPrefix(path, mod+"/sshpool") && strings.HasPrefix(dep, mod+"/"):
				t.Errorf("%s depends on %s: sshpool knows nothing of the deploy domain", path, dep)
			case isDomain(path) && (isLua(dep) || strings.HasPrefix(dep, mod+"/runtime") || strings.HasPrefix(dep, mod+"/builtins/")):
				t.Errorf("%s depends on %s: domain packages under internal/ know nothing of Lua", path, dep)
			}
		}
	}
}
