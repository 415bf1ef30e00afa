package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	gtconfig "github.com/gretun/gretun/config"
)

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tgretun\nUmask:\t0022\nVmPeak:\t 1258000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   48712 kB\nRssAnon:\t   40000 kB\n"
	if kb, err := parseVmRSS(status); err != nil || kb != 48712 {
		t.Fatalf("parseVmRSS = %d, %v; want 48712", kb, err)
	}
	for name, bad := range map[string]string{
		"kernel thread": "Name:\tkthreadd\nState:\tS (sleeping)\n",
		"empty":         "",
		"no unit":       "VmRSS:\t 100\n",
		"other unit":    "VmRSS:\t 100 MB\n",
		"not a number":  "VmRSS:\t lots kB\n",
		"negative":      "VmRSS:\t -5 kB\n",
		"too big":       "VmRSS:\t 99999999999999999999999 kB\n",
	} {
		if kb, err := parseVmRSS(bad); err == nil {
			t.Errorf("%s: parseVmRSS(%q) = %d, want an error", name, bad, kb)
		}
	}
	// Our own status, as the daemon's is read.
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc: ", err)
	}
	if kb, err := parseVmRSS(string(data)); err != nil || kb <= 0 {
		t.Fatalf("parseVmRSS(/proc/self/status) = %d, %v", kb, err)
	}
}

func TestCountLinks(t *testing.T) {
	out := `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff link-netns b
4: t1: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1476 qdisc fq_codel state UNKNOWN mode DEFAULT group default qlen 500\    link/none
5: t2: <POINTOPOINT,MULTICAST,NOARP> mtu 1476 qdisc noop state DOWN mode DEFAULT group default qlen 500\    link/none
6: t10: <POINTOPOINT,MULTICAST,NOARP> mtu 1476 qdisc noop state DOWN mode DEFAULT group default qlen 500\    link/none
7: t3@NONE: <NOARP> mtu 1480 qdisc noop state DOWN mode DEFAULT group default qlen 1000\    link/ipip 0.0.0.0 brd 0.0.0.0
garbage
`
	if n := countLinks(out, tunnelNames(3)); n != 3 {
		t.Fatalf("countLinks(t1…t3) = %d, want 3 (t1, t2, t3@NONE; not t10)", n)
	}
	if n := countLinks(out, tunnelNames(10)); n != 4 {
		t.Fatalf("countLinks(t1…t10) = %d, want 4", n)
	}
	if n := countLinks("", tunnelNames(3)); n != 0 {
		t.Fatalf("countLinks of nothing = %d", n)
	}
	if len(tunnelNames(1000)) != 1000 || !tunnelNames(1000)["t1000"] || tunnelNames(1000)["t0"] {
		t.Fatal("tunnelNames(1000) is not t1…t1000")
	}
}

// The generated file is one the daemon accepts, with the tunnels the
// busy-tunnel test relies on: t1 with key 1, from a to b.
func TestScaleConfig(t *testing.T) {
	tunnels, err := gtconfig.Load("scale.conf", strings.NewReader(scaleConfig(1000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(tunnels) != 1000 {
		t.Fatalf("%d tunnels, want 1000", len(tunnels))
	}
	first := tunnels[0].String()
	for _, want := range []string{"t1: gre/ip ", fmt.Sprintf(" remote %s local %s ", underlayB, underlayA), " key 1"} {
		if !strings.Contains(first, want) {
			t.Errorf("first tunnel %q lacks %q", first, want)
		}
	}
	keys := map[string]bool{}
	for i, tn := range tunnels {
		if name := fmt.Sprintf("t%d", i+1); tn.Name != name {
			t.Fatalf("tunnel %d is %s, want %s", i, tn.Name, name)
		}
		keys[tn.String()[len(tn.Name):]] = true
	}
	if len(keys) != 1000 {
		t.Fatalf("only %d distinct tunnel configurations: keys repeat", len(keys))
	}
	if c, err := gtconfig.Load("empty", strings.NewReader(scaleConfig(0))); err != nil || len(c) != 0 {
		t.Fatalf("scaleConfig(0) = %d tunnels, %v", len(c), err)
	}
}

// realPID leaves a process that is not `ip` alone, and follows one that
// is to its only child, as when `ip netns exec` forks instead of execing.
func TestRealPID(t *testing.T) {
	if pid, err := realPID(os.Getpid()); err != nil || pid != os.Getpid() {
		t.Fatalf("realPID(self) = %d, %v", pid, err)
	}
	if _, err := realPID(1 << 30); err == nil {
		t.Fatal("realPID of a process that does not exist succeeded")
	}
	// A process named ip with one child: sh, through a link named ip,
	// running sleep.
	dir := t.TempDir()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("needs sh")
	}
	fakeIP := dir + "/ip"
	if err := os.Symlink(sh, fakeIP); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fakeIP, "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var child int
	for i := 0; i < 100; i++ {
		if child, err = realPID(cmd.Process.Pid); err == nil {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	if err != nil {
		t.Fatalf("realPID(fake ip with a child): %v", err)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
	if child == cmd.Process.Pid || strings.TrimSpace(string(comm)) != "sleep" {
		t.Fatalf("realPID = %d (%q), want the sleep child of %d", child, comm, cmd.Process.Pid)
	}
	exec.Command("kill", fmt.Sprint(child)).Run()
}

func TestScaleFigures(t *testing.T) {
	s := ScaleResult{Tunnels: 1000, Created: 1000}
	s.setRSS(8*1024, 58*1024)
	if s.RSSBaselineMB != 8 || s.RSSTotalMB != 58 || s.RSSPerTunnelKB != 51.2 {
		t.Fatalf("setRSS: %+v", s)
	}
	s.Created = 0
	s.setRSS(8*1024, 58*1024)
	if s.RSSPerTunnelKB != 0 {
		t.Fatalf("per-tunnel figure with no tunnel created: %v", s.RSSPerTunnelKB)
	}
	s.setTCP([]float64{2, 1, 2.2}, []float64{1.9, 1.2, 1.1})
	if s.Rounds != 3 || s.TCPAloneGbps != 2 || s.TCPAmongGbps != 1.2 || s.TCPRatio != 0.95 {
		t.Fatalf("setTCP: %d rounds, alone %v, among %v, ratio %v; want 3, 2, 1.2, 0.95 (the rounds' median ratio)",
			s.Rounds, s.TCPAloneGbps, s.TCPAmongGbps, s.TCPRatio)
	}
	s.setTCP([]float64{2, 0}, []float64{1.5, 1})
	if s.Rounds != 1 || s.TCPRatio != 0.75 || s.TCPAloneGbps != 1 {
		t.Fatalf("setTCP with a failed alone figure: %d rounds, ratio %v, alone %v; want 1, 0.75, 1", s.Rounds, s.TCPRatio, s.TCPAloneGbps)
	}
	s.setTCP(nil, nil)
	if s.Rounds != 0 || s.TCPRatio != 0 {
		t.Fatalf("setTCP with nothing measured: %+v", s)
	}
}

func sampleScale() *ScaleResult {
	return &ScaleResult{Tunnels: 1000, Created: 1000, CreateSeconds: 2.5,
		RSSBaselineMB: 6.4, RSSTotalMB: 207.8, RSSPerTunnelKB: 206.2,
		RSSAfterTCPMB: 209.1, TCPAloneGbps: 2, TCPAmongGbps: 1.9, TCPRatio: 0.95, Rounds: 3, StopSeconds: 19.3,
		KernelCreateSeconds: 2, KernelStopSeconds: 19.3}
}

func TestWriteTableScale(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	r.Scale = sampleScale()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	// The throughput table and its failure line, a blank line, the scale
	// section, the machine line.
	if len(lines) != 6+1+15+1 || lines[6] != "" {
		t.Fatalf("unexpected layout:\n%s", b.String())
	}
	want := [][]string{
		{"scale:", "1000", "GRE", "tunnels", "in", "one", "daemon", "measured", "target"},
		{"tunnels", "created", "1000", "1000", "met"},
		{"seconds", "to", "create", "2.50", "<", "5", "met"},
		{"RSS", "total", "MB", "207.8", "<", "100", "MISSED"},
		{"RSS", "per", "tunnel", "KB", "206.2"},
		{"RSS", "after", "the", "TCP", "test", "MB", "209.1"},
		{"seconds", "to", "stop", "19.30"},
		{"kernel:", "seconds", "to", "make", "1000", "devices", "2.00"},
		{"create", "time", "/", "kernel's", "1.25"},
		{"kernel:", "seconds", "to", "remove", "1000", "devices", "19.30"},
		{"stop", "time", "/", "kernel's", "1.00"},
		{"RSS", "with", "0", "tunnels", "MB", "6.4"},
		{"TCP", "Gbit/s", "alone", "2.00"},
		{"TCP", "Gbit/s", "among", "1000", "1.90"},
		{"ratio", "among/alone", "(median", "of", "3)", "0.95", "≥", "0.95", "met"},
	}
	for i, w := range want {
		l := lines[7+i]
		if d := cmp.Diff(w, strings.Fields(l)); d != "" {
			t.Errorf("scale line %d (-want +got):\n%s", i, d)
		}
		if strings.HasSuffix(l, " ") {
			t.Errorf("scale line %d ends in spaces: %q", i, l)
		}
	}
	col := strings.Index(lines[7], "measured")
	for _, l := range lines[8:22] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("measured column not aligned at %d in %q", col, l)
		}
	}
	if !strings.Contains(lines[22], "5s per test") {
		t.Errorf("machine line = %q", lines[22])
	}

	// Only the scale section, failed halfway: no throughput table, what
	// was measured, dashes for the rest, the error, no verdicts on
	// missing figures.
	r = &Report{DurationSeconds: 5, Scale: &ScaleResult{Tunnels: 50, RSSBaselineMB: 6.4, TCPAloneGbps: 2,
		Error: "daemon with 50 tunnels: gretun exited: exit status 1"}}
	if !r.Failed() {
		t.Fatal("a report with a failed scale section is not Failed")
	}
	b.Reset()
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "scale: 50 GRE tunnels in one daemon") {
		t.Fatalf("scale-only table does not start with the scale section:\n%s", out)
	}
	if !strings.Contains(out, "\nscale: FAILED: daemon with 50 tunnels: gretun exited: exit status 1\n") {
		t.Errorf("table lacks the error line:\n%s", out)
	}
	if strings.Contains(out, "met") || strings.Contains(out, "MISSED") || strings.Contains(out, "row ") {
		t.Errorf("verdicts on unmeasured figures, or a throughput header:\n%s", out)
	}
	// The time and memory targets are for 1000 tunnels, not 50.
	if strings.Contains(out, "< 5") || strings.Contains(out, "< 100") || !strings.Contains(out, "≥ 0.95") {
		t.Errorf("targets for 50 tunnels: want only the ratio's:\n%s", out)
	}
	var measured []string
	for _, l := range strings.Split(out, "\n")[1:15] {
		f := strings.Fields(l)
		for i, w := range f {
			if w == "-" || strings.Contains(w, ".") {
				measured = append(measured, f[i])
				break
			}
		}
	}
	if d := cmp.Diff([]string{"-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "6.4", "2.00", "-", "-"}, measured); d != "" {
		t.Errorf("measured column (-want +got):\n%s\n%s", d, out)
	}
}

func TestWriteJSONScale(t *testing.T) {
	r := sampleReport()
	r.Scale = sampleScale()
	js := jsonRoundTrip(t, r)
	for _, key := range []string{`"scale": {`, `"tunnels": 1000`, `"tunnels_created": 1000`, `"create_s": 2.5`,
		`"rss_0_tunnels_mb": 6.4`, `"rss_total_mb": 207.8`, `"rss_per_tunnel_kb": 206.2`,
		`"tcp_gbit_s_alone": 2`, `"tcp_gbit_s_among": 1.9`, `"tcp_ratio_among_to_alone": 0.95`, `"stop_s": 19.3`} {
		if !strings.Contains(js, key) {
			t.Errorf("JSON lacks %s:\n%s", key, js)
		}
	}
	// Not run: no scale key at all.
	var b bytes.Buffer
	sampleReport().WriteJSON(&b)
	if strings.Contains(b.String(), `"scale"`) {
		t.Errorf("JSON of a run without the scale section mentions it:\n%s", b.String())
	}
}

// svgContent collects the texts and bar widths of a chart, failing on
// malformed XML.
func svgContent(t *testing.T, data []byte) (texts []string, bars []int) {
	t.Helper()
	var root svgElem
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("chart is not well-formed XML: %v\n%s", err, data)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local == "svg" {
			continue
		}
		var el svgElem
		if err := dec.DecodeElement(&el, &se); err != nil {
			t.Fatal(err)
		}
		attr := map[string]string{}
		for _, a := range el.Attrs {
			attr[a.Name.Local] = a.Value
		}
		switch {
		case se.Name.Local == "text":
			texts = append(texts, el.Text)
		case se.Name.Local == "rect" && attr["y"] != "":
			var w int
			fmt.Sscan(attr["width"], &w)
			bars = append(bars, w)
		}
	}
	return texts, bars
}

func TestWriteSVGScale(t *testing.T) {
	r := &Report{DurationSeconds: 5, Scale: sampleScale()}
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	texts, bars := svgContent(t, b.Bytes())
	for _, want := range []string{"Scale: 1000 GRE tunnels in one daemon",
		"created 1000 of 1000 in 2.50 s (target < 5 s); stopped (every device removed) in 19.30 s",
		"RSS 207.8 MB in all (target < 100 MB), 206.2 KB per tunnel, 6.4 MB with 0 tunnels",
		"t1 alone, TCP Gbit/s", "t1 among 1000", "2.00", "1.90 (0.95x alone; target ≥ 0.95)"} {
		found := false
		for _, s := range texts {
			found = found || s == want
		}
		if !found {
			t.Errorf("chart has no text %q; texts: %q", want, texts)
		}
	}
	if d := cmp.Diff([]int{svgPanelW, round(1.9 / 2 * svgPanelW)}, bars); d != "" {
		t.Fatalf("bar widths (-want +got):\n%s", d)
	}
	for _, s := range texts {
		if strings.Contains(s, "UDP") {
			t.Errorf("scale-only chart draws the throughput panels: %q", s)
		}
	}

	// With rows and a failed scale section: both drawn, the error shown.
	r = sampleReport()
	r.Scale = &ScaleResult{Tunnels: 1000, TCPAloneGbps: 2, Error: "among 1000: TCP through t1: <timeout>"}
	b.Reset()
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	texts, bars = svgContent(t, b.Bytes())
	if len(bars) != 6+1 {
		t.Errorf("%d bars, want the 6 of the rows and the alone one", len(bars))
	}
	for _, want := range []string{"direct veth", "failed", "FAILED: among 1000: TCP through t1: <timeout>"} {
		found := false
		for _, s := range texts {
			found = found || s == want
		}
		if !found {
			t.Errorf("chart has no text %q; texts: %q", want, texts)
		}
	}
}

// TestScaleTargetsBySize: 10,000 tunnels are held to issue 13's targets,
// not to issue 7's for 1000.
func TestScaleTargetsBySize(t *testing.T) {
	for _, tc := range []struct {
		tunnels     int
		seconds, mb float64
		ok          bool
	}{{50, 0, 0, false}, {1000, 5, 100, true}, {5000, 5, 100, true}, {10000, 30, 300, true}} {
		s := &ScaleResult{Tunnels: tc.tunnels}
		if sec, mb, ok := s.sizeTargets(); sec != tc.seconds || mb != tc.mb || ok != tc.ok {
			t.Errorf("%d tunnels: targets %g s %g MB %v, want %g s %g MB %v", tc.tunnels, sec, mb, ok, tc.seconds, tc.mb, tc.ok)
		}
	}
}
