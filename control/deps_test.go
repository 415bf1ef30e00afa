package control

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoEngineDependency: the control protocol is JSON types (package
// status) and a socket; a client needs none of the engine.
func TestNoEngineDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/gretun/gretun/tunnel" {
			t.Errorf("control imports %s; `go list -deps ./control` must not list it", pkg)
		}
	}
}
