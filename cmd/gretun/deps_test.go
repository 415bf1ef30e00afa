package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestingInBinary keeps the testing package (and whatever test
// helpers drag in) out of the daemon binary: `bench` links internal/testnet,
// which must reach testing.TB only through its own small interface.
func TestNoTestingInBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") {
			t.Errorf("gretun links %s; `go list -deps ./cmd/gretun` must not list it", pkg)
		}
	}
}
