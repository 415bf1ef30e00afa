package bench

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMainRejectsBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown row":     {"--only", "veth,warp"},
		"empty only":      {"--only", ","},
		"gif chart":       {"--chart", "out.gif"},
		"no extension":    {"--chart", "out"},
		"short duration":  {"--duration", "100ms"},
		"negative":        {"--duration", "-5s"},
		"stray argument":  {"now"},
		"unknown flag":    {"--fast"},
		"duration syntax": {"--duration", "five"},
		"no tunnels":      {"--scale-tunnels", "0"},
		"too many":        {"--scale-tunnels", "10001"},
		"no rounds":       {"--rounds", "0"},
		"too many rounds": {"--rounds", "21"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(args, &stdout, &stderr); code != 2 {
				t.Fatalf("Main(%q) = %d, want 2; stderr: %s", args, code, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("wrote to stdout on a usage error: %q", stdout.String())
			}
			if stderr.Len() == 0 {
				t.Error("said nothing about the error")
			}
		})
	}
}

func TestSelectRows(t *testing.T) {
	names := func(rs []row) []string {
		var n []string
		for _, r := range rs {
			n = append(n, r.name)
		}
		return n
	}
	all, scale, err := selectRows("")
	if err != nil || !scale {
		t.Fatalf("no --only: scale %v, err %v; want the scale section too", scale, err)
	}
	if d := cmp.Diff([]string{"veth", "vxlan", "classic", "ipip", "gre", "gre-packet", "gre-kcs", "ip6gre", "ipip6", "gre-fou", "ipip-fou", "gre-fou-p4", "netstack", "gretap", "gretap-fou"}, names(all)); d != "" {
		t.Fatalf("all rows (-want +got):\n%s", d)
	}
	// Step rows run only when named.
	sel, _, err := selectRows("gre-fou,gre-fou-nogso")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"gre-fou", "gre-fou-nogso"}, names(sel)); d != "" {
		t.Fatalf("--only with a step row (-want +got):\n%s", d)
	}
	// Table order, whatever order --only gives; duplicates collapse.
	sel, scale, err = selectRows(" gre, veth ,gre,classic")
	if err != nil || scale {
		t.Fatalf("--only rows: scale %v, err %v; want no scale section", scale, err)
	}
	if d := cmp.Diff([]string{"veth", "classic", "gre"}, names(sel)); d != "" {
		t.Fatalf("--only rows (-want +got):\n%s", d)
	}
	sel, scale, err = selectRows("scale")
	if err != nil || !scale || len(sel) != 0 {
		t.Fatalf("--only scale: rows %q, scale %v, err %v; want the scale section alone", names(sel), scale, err)
	}
	sel, scale, err = selectRows("scale,ipip")
	if err != nil || !scale {
		t.Fatalf("--only scale,ipip: scale %v, err %v", scale, err)
	}
	if d := cmp.Diff([]string{"ipip"}, names(sel)); d != "" {
		t.Fatalf("--only scale,ipip rows (-want +got):\n%s", d)
	}
	if _, _, err := selectRows("vxlan,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown row: err = %v, want one naming it", err)
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := cpuModel(info); got != "AMD EPYC 7B13" {
		t.Fatalf("cpuModel = %q", got)
	}
	if got := cpuModel("processor : 0\n"); got != "unknown CPU" {
		t.Fatalf("cpuModel without model name = %q", got)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bench", "classic", "main.go")); err != nil {
		t.Fatalf("moduleRoot = %s, which has no bench/classic: %v", root, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n"), 0o644)
	if isModuleRoot(dir) {
		t.Fatal("another module's go.mod was taken for gretun's")
	}
	if isModuleRoot(t.TempDir()) {
		t.Fatal("a directory without go.mod was taken for gretun's")
	}
}

func TestWriteChart(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	dir := t.TempDir()
	svg := filepath.Join(dir, "chart.svg")
	if err := writeChart(svg, r); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	r.WriteSVG(&want)
	if got, err := os.ReadFile(svg); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("chart.svg differs from WriteSVG's output (err %v)", err)
	}
	if err := writeChart(filepath.Join(dir, "missing", "chart.svg"), r); err == nil {
		t.Fatal("writing into a missing directory did not fail")
	}

	if _, err := exec.LookPath("rsvg-convert"); err != nil {
		t.Skip("PNG charts need rsvg-convert: apt-get install -y librsvg2-bin")
	}
	pngPath := filepath.Join(dir, "chart.PNG")
	if err := writeChart(pngPath, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("chart.PNG is not a PNG: %v", err)
	}
	if w := svgLabelW + 2*svgPanelW + 2*svgGap; cfg.Width != w {
		t.Fatalf("PNG is %d pixels wide, want the SVG's %d", cfg.Width, w)
	}
}

// TestMainRefusesTestBinary: without --gretun, bench runs its own program
// for the gretun rows; inside `go test` that is this test binary, whose
// `run` would start every test again, and so on without end.
func TestMainRefusesTestBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to get past the privilege check")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 to get past its check")
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"--only", "gre", "--duration", "1s"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "pass --gretun") {
		t.Fatalf("Main without --gretun in a test binary = %d, stderr %q; want 1 and a request for --gretun", code, stderr.String())
	}
	noNamespacesLeft(t)
}
