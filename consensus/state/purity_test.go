package state

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The state machine must decide alike on every node: no host I/O, no
// randomness, no clock. Its dependencies cannot be checked with go list
// -deps: crypto/x509 and crypto/ecdsa bring in crypto/rand, os and net. So
// this reads the source of the state tree (and of the command package it
// decodes) instead, test files aside.
var (
	forbiddenImports = map[string]string{
		"crypto/rand":  "randomness",
		"math/rand":    "randomness",
		"math/rand/v2": "randomness",
		"os":           "host I/O",
		"os/exec":      "host I/O",
		"io/ioutil":    "host I/O",
		"syscall":      "host I/O",
		"net":          "network I/O",
		"net/http":     "network I/O",
		"time/tzdata":  "a second tz database: zones come from package tz",
	}
	// forbiddenTime are the time functions that read the clock or the host's
	// zoneinfo; time comes from the command (c.At), zones from tz.Load.
	forbiddenTime = map[string]string{
		"Now":          "the clock",
		"Since":        "the clock",
		"Until":        "the clock",
		"Sleep":        "the clock",
		"After":        "the clock",
		"AfterFunc":    "the clock",
		"Tick":         "the clock",
		"NewTimer":     "the clock",
		"NewTicker":    "the clock",
		"LoadLocation": "the host's zoneinfo (use tz.Load)",
	}
	// The lintel packages the state tree may import; others are not scanned.
	lintelImports = []string{"lintel/consensus/command", "lintel/consensus/state"}
)

func TestStateTreeIsPure(t *testing.T) {
	var files []string
	for _, root := range []string{".", filepath.Join("..", "command")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	if len(files) < 10 {
		t.Fatalf("found only %d source files: %v", len(files), files)
	}
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		timeNames := map[string]bool{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			pos := fset.Position(imp.Pos())
			if why, bad := forbiddenImports[p]; bad {
				t.Errorf("%s: imports %q (%s)", pos, p, why)
			}
			if strings.HasPrefix(p, "lintel/") && !allowedLintel(p) {
				t.Errorf("%s: imports %q: the state tree imports only itself and lintel/consensus/command", pos, p)
			}
			if p == "time" {
				name := "time"
				if imp.Name != nil {
					name = imp.Name.Name
				}
				if name == "." {
					t.Errorf("%s: dot-imports time", pos)
				}
				timeNames[name] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && timeNames[x.Name] {
				if why, bad := forbiddenTime[sel.Sel.Name]; bad {
					t.Errorf("%s: time.%s reads %s", fset.Position(sel.Pos()), sel.Sel.Name, why)
				}
			}
			return true
		})
	}
}

func allowedLintel(p string) bool {
	for _, a := range lintelImports {
		if p == a || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}
