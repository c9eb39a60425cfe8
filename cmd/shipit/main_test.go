package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shipit": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// CLI behaviour that needs no host: help, tasks, config and script errors.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
}
