// Package dist holds what `make install` installs beside the binary: the
// systemd unit and the example config. This test installs them.
package dist

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/metrics"
)

func makeInstall(t *testing.T, vars ...string) {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "install"}, vars...)...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install %v: %v\n%s", vars, err, out)
	}
}

// unitKeys reads a unit file's Key=value lines.
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	return keys
}

// TestMakeInstall runs `make install DESTDIR=…` and checks what lands
// where: the binary, the unit pointing at it with the privileges the
// issue asks for, the example config (which parses, commented and not),
// and that a second install keeps the user's config.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gretun")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest)
	bin := filepath.Join(dest, "usr/local/bin/gretun")
	unit := filepath.Join(dest, "usr/local/lib/systemd/system/gretun.service")
	conf := filepath.Join(dest, "etc/gretun/gretun.conf")
	example := conf + ".example"
	for path, mode := range map[string]os.FileMode{bin: 0o755, unit: 0o644, conf: 0o644, example: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("make install did not install %s: %v", path, err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "gretun ") {
		t.Errorf("installed gretun version: %v: %s", err, out)
	}

	keys := unitKeys(t, unit)
	for k, want := range map[string]string{
		"ExecStart":              "/usr/local/bin/gretun daemon -c /etc/gretun/gretun.conf",
		"ExecReload":             "kill -HUP $MAINPID",
		"CapabilityBoundingSet":  "CAP_NET_ADMIN CAP_NET_RAW",
		"AmbientCapabilities":    "CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
		"RuntimeDirectory":       "gretun",
		"ConfigurationDirectory": "gretun",
		"DeviceAllow":            "/dev/net/tun rw",
	} {
		if keys[k] != want {
			t.Errorf("unit: %s=%q, want %q", k, keys[k], want)
		}
	}
	if _, ok := keys["ProtectKernelTunables"]; ok {
		t.Error("unit: ProtectKernelTunables would keep gretun from setting ignore_routes_with_linkdown")
	}

	// The example parses, and so do its tunnels once uncommented.
	if tunnels, err := config.LoadFile(example); err != nil || len(tunnels) != 0 {
		t.Errorf("example config: %d tunnels, %v; want none, all commented", len(tunnels), err)
	}
	b, _ := os.ReadFile(example)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(l, "# "); ok && strings.Contains(s, " mode ") {
			lines = append(lines, s)
		}
	}
	uncommented := filepath.Join(t.TempDir(), "gretun.conf")
	os.WriteFile(uncommented, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	if tunnels, err := config.LoadFile(uncommented); err != nil || len(tunnels) != 2 {
		t.Errorf("the example's tunnels: %d, %v; want 2", len(tunnels), err)
	}

	// A second install keeps the user's config.
	os.WriteFile(conf, []byte("mine mode ipip remote 192.0.2.2 local 192.0.2.1\n"), 0o644)
	makeInstall(t, "DESTDIR="+dest)
	if b, _ := os.ReadFile(conf); string(b) != "mine mode ipip remote 192.0.2.2 local 192.0.2.1\n" {
		t.Errorf("make install overwrote the config: %q", b)
	}
}

// TestUnitVerifies has systemd check the unit, installed under a prefix
// where its ExecStart exists: no error and no warning.
func TestUnitVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gretun")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze (systemd); TestMakeInstall checks the unit's directives")
	}
	root := t.TempDir()
	makeInstall(t, "PREFIX="+root+"/usr", "CONFDIR="+root+"/etc/gretun")
	unit := filepath.Join(root, "usr/lib/systemd/system/gretun.service")
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDashboard: the Grafana dashboard is valid JSON whose queries name
// only metrics gretun exports (the collector's, Go's and the process's).
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc, 100)
	metrics.NewCollector(nil).Describe(ch)
	close(ch)
	for desc := range ch {
		name := desc.String()
		name = name[strings.Index(name, `"`)+1:]
		exported[name[:strings.Index(name, `"`)]] = true
	}
	for _, n := range []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines"} {
		exported[n] = true
	}
	word := regexp.MustCompile(`\b(gretun|go|process)_[a-z_]+`)
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := word.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q: %s is not a metric gretun exports", p.Title, n)
				}
			}
		}
	}
}
