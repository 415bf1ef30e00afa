package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needBench skips an end-to-end benchmark test, naming what it needs,
// under -short, without root or without iperf3.
func needBench(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end benchmark; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CAP_SYS_ADMIN, CAP_NET_ADMIN); run as root, as CI does")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3: " + installHint)
	}
}

// smoke runs `gretun bench --only ROW --duration 1s --json` for real, in
// namespaces of its own, and returns the row. It checks that something was
// carried, not how fast: speed depends on the machine.
func smoke(t *testing.T, rowName string, extra ...string) Result {
	t.Helper()
	needBench(t)
	var stdout, stderr bytes.Buffer
	code := Main(append([]string{"--only", rowName, "--duration", "1s", "--json"}, extra...), &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	if code != 0 || len(rep.Rows) != 1 || rep.Rows[0].Error != "" {
		t.Fatalf("exit %d, rows %+v\nstderr: %s", code, rep.Rows, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bench: [1/1] ") {
		t.Errorf("no progress lines on stderr: %q", stderr.String())
	}
	noNamespacesLeft(t)
	row := rep.Rows[0]
	if row.TCPGbps <= 0 || row.UDPKpps <= 0 || row.DeliveredKpps <= 0 || row.CPUPerGB <= 0 {
		t.Fatalf("nothing measured: %+v", row)
	}
	return row
}

func TestSmokeDirectVeth(t *testing.T) {
	row := smoke(t, "veth")
	t.Logf("direct veth, 1s: %.2f Gbit/s, %.1f kpps, %.2f CPU s/GB", row.TCPGbps, row.UDPKpps, row.CPUPerGB)
}

// The classic loop is the yardstick for every ratio, so it must carry both
// TCP and small UDP packets in both directions (TCP needs the ACKs back).
func TestSmokeClassicLoop(t *testing.T) {
	row := smoke(t, classicName)
	if row.TCPRatio != 1 || row.PPSRatio != 1 || row.DeliveredRatio != 1 {
		t.Errorf("classic row's ratios to itself = %v, %v, %v; want 1, 1, 1", row.TCPRatio, row.PPSRatio, row.DeliveredRatio)
	}
	t.Logf("classic loop, 1s: %.2f Gbit/s, %.1f kpps, %.2f CPU s/GB", row.TCPGbps, row.UDPKpps, row.CPUPerGB)
}

// The netstack row carries iperf3's TCP stream and UDP datagrams through
// forwarded ports and a userspace stack, with no device on side a.
func TestSmokeNetstack(t *testing.T) {
	needBench(t)
	row := smoke(t, "netstack", "--gretun", buildGretun(t))
	t.Logf("netstack, 1s: %.2f Gbit/s, %.1f kpps, %.2f CPU s/GB", row.TCPGbps, row.UDPKpps, row.CPUPerGB)
}

// signalOn is an io.Writer that sends sig to this process the first time
// the text written to it contains trigger.
type signalOn struct {
	mu      sync.Mutex
	buf     strings.Builder
	trigger string
	sig     syscall.Signal
	sent    bool
}

func (s *signalOn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.sent && strings.Contains(s.buf.String(), s.trigger) {
		s.sent = true
		syscall.Kill(os.Getpid(), s.sig)
	}
	return len(p), nil
}

func (s *signalOn) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// An interrupt in the middle of a measurement ends the run with status
// 130 and leaves no namespaces or processes behind.
func TestInterruptCleansUp(t *testing.T) {
	needBench(t)
	// The trigger line is printed after the signal handler is installed.
	stderr := &signalOn{trigger: ": TCP, 60s", sig: syscall.SIGTERM}
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Main([]string{"--only", "veth", "--duration", "60s"}, &stdout, stderr) }()
	select {
	case code := <-done:
		if code != 130 {
			t.Fatalf("exit %d, want 130\nstderr: %s", code, stderr.String())
		}
	case <-time.After(50 * time.Second): // a hang guard, well short of the 60s test
		t.Fatalf("Main did not return after SIGTERM\nstderr: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted: %s", stderr.String())
	}
	noNamespacesLeft(t)
}

// The scale section for real with 50 tunnels and 1s tests (the run
// measures 1000 by default): every figure is measured and the
// namespaces and daemons are gone afterwards. Needs the gretun binary,
// built here.
func TestSmokeScale(t *testing.T) {
	needBench(t)
	bin := buildGretun(t)
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--only", "scale", "--scale-tunnels", "50", "--duration", "1s", "--json", "--gretun", bin}, &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	if code != 0 || len(rep.Rows) != 0 || rep.Scale == nil || rep.Scale.Error != "" {
		t.Fatalf("exit %d, rows %+v, scale %+v\nstderr: %s", code, rep.Rows, rep.Scale, stderr.String())
	}
	s := *rep.Scale
	if s.Tunnels != 50 || s.Created != 50 || s.CreateSeconds <= 0 || s.RSSBaselineMB <= 0 ||
		s.RSSTotalMB <= 0 || s.TCPAloneGbps <= 0 || s.TCPAmongGbps <= 0 || s.TCPRatio <= 0 ||
		s.KernelCreateSeconds <= 0 || s.KernelStopSeconds <= 0 {
		t.Fatalf("not everything measured: %+v", s)
	}
	noNamespacesLeft(t)
	if out, _ := exec.Command("pgrep", "-f", bin).Output(); len(out) > 0 {
		t.Fatalf("gretun processes left behind: %s", out)
	}
	t.Logf("50 tunnels in %.2fs, %.1f MB RSS (%.1f KB per tunnel, %.1f MB with none); TCP %.2f alone, %.2f among (%.2fx)",
		s.CreateSeconds, s.RSSTotalMB, s.RSSPerTunnelKB, s.RSSBaselineMB, s.TCPAloneGbps, s.TCPAmongGbps, s.TCPRatio)
}

// buildGretun builds the gretun binary for the rows that run it (the
// test binary must never stand in for it: it would run the tests again).
func buildGretun(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Skip(err)
	}
	bin := filepath.Join(t.TempDir(), "gretun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gretun")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build gretun (another package mid-edit?): %v: %s", err, lastLine(string(out)))
	}
	return bin
}

// noNamespacesLeft fails t if this process's bench namespaces still exist.
func noNamespacesLeft(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if prefix := fmt.Sprintf("gb-%d-", os.Getpid()); strings.Contains(string(out), prefix) {
		t.Fatalf("namespaces %s* left behind:\n%s", prefix, out)
	}
}
