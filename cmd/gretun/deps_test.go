package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package graph as designed:
//   - the testing package (and whatever test helpers drag in) stays out of
//     the daemon binary: `bench` links internal/testnet, which must reach
//     testing.TB only through its own small interface;
//   - the control protocol is JSON types (package status) and a socket: a
//     client needs none of the engine.
func TestDependencies(t *testing.T) {
	for _, rule := range []struct {
		pkg    string
		forbid func(dep string) bool
	}{
		{".", func(dep string) bool { return dep == "testing" || strings.HasPrefix(dep, "testing/") }},
		{"../../control", func(dep string) bool { return dep == "github.com/gretun/gretun/tunnel" }},
	} {
		out, err := exec.Command("go", "list", "-deps", rule.pkg).CombinedOutput()
		if err != nil {
			t.Skipf("go list: %v\n%s", err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if rule.forbid(dep) {
				t.Errorf("%s links %s; `go list -deps %s` must not list it", rule.pkg, dep, rule.pkg)
			}
		}
	}
}
