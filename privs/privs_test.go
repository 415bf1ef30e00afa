package privs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrop runs Drop in a child process started as root and checks every
// one of its threads: only CAP_NET_ADMIN and CAP_NET_RAW effective,
// permitted and bounding, nothing ambient or inheritable.
func TestDrop(t *testing.T) {
	if os.Getenv("GRETUN_PRIVS_CHILD") == "1" {
		if err := Drop(); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
		tasks, _ := filepath.Glob("/proc/self/task/*/status")
		for _, task := range tasks {
			b, _ := os.ReadFile(task)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "Cap") {
					os.Stdout.WriteString(line + "\n")
				}
			}
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops capabilities it must hold first")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDrop$")
	cmd.Env = append(os.Environ(), "GRETUN_PRIVS_CHILD=1")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && strings.Contains(string(ee.Stderr), "cgo") {
		t.Skipf("this test binary uses cgo: %s", ee.Stderr)
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	want := map[string]string{"CapEff": "0000000000003000", "CapPrm": "0000000000003000", "CapBnd": "0000000000003000",
		"CapAmb": "0000000000000000", "CapInh": "0000000000000000"}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("child printed %q", out)
	}
	for _, line := range lines {
		k, v, _ := strings.Cut(line, ":")
		if v = strings.TrimSpace(v); want[k] != v {
			t.Errorf("%s %s, want %s", k, v, want[k])
		}
	}
}
