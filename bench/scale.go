package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// The scale measurement (issue 7's "Scale" target): many tunnels in one
// daemon, how long they take to create, what they cost in memory, and
// whether a busy tunnel among them is as fast as alone. Its figures are
// not throughput rows, so it has a section of its own in the report.
const (
	scaleName    = "scale" // for --only
	scaleTunnels = 1000    // default --scale-tunnels
	maxScale     = 10000   // bound for --scale-tunnels: names t1…t10000

	// Issue 7's targets, printed next to the figures.
	scaleTargetSeconds = 5.0
	scaleTargetMB      = 100.0
	// Issue 13's, for 10,000 tunnels.
	scale10kSeconds  = 30.0
	scale10kMB       = 300.0
	scaleTargetRatio = 0.95

	// scaleRounds is how many times the busy tunnel is measured alone and
	// among the others, alternately.
	scaleRounds = 3

	// readyLog is what `gretun daemon` logs once every tunnel of its
	// config file has been added.
	readyLog = "gretun daemon running"
	// scaleDev is the busy tunnel, the first of the config file.
	scaleDev = "t1"
	// daemonGrace is how long a stopping daemon may take to remove its
	// devices before it is killed (its devices then vanish with it, no
	// faster: the kernel removes them one by one either way).
	daemonGrace = 60 * time.Second
	// createTimeout bounds the wait for a daemon to create its tunnels.
	createTimeout = 2 * time.Minute
	// scaleMTU is the MTU the daemon gives its keyed GRE tunnels on a
	// 1500-byte underlay, and the kernel reference its veth devices.
	scaleMTU = 1476
)

// ScaleResult is the scale section of the report. A failure keeps what
// was measured before it and says why in Error.
type ScaleResult struct {
	Tunnels        int     `json:"tunnels"`         // in the config file
	Created        int     `json:"tunnels_created"` // devices that existed when ready
	CreateSeconds  float64 `json:"create_s"`        // daemon start → logged ready and every device there
	RSSBaselineMB  float64 `json:"rss_0_tunnels_mb"`
	RSSTotalMB     float64 `json:"rss_total_mb"`
	RSSPerTunnelKB float64 `json:"rss_per_tunnel_kb"`                  // (total − 0 tunnels) / created
	RSSAfterTCPMB  float64 `json:"rss_after_tcp_mb"`                   // total, once t1 has carried the TCP test
	TCPAloneGbps   float64 `json:"tcp_gbit_s_alone"`                   // through t1 with a daemon holding only t1 (median of the rounds)
	TCPAmongGbps   float64 `json:"tcp_gbit_s_among"`                   // through t1 with the daemon holding all (median)
	TCPRatio       float64 `json:"tcp_ratio_among_to_alone,omitempty"` // median of the rounds' among/alone
	Rounds         int     `json:"rounds"`                             // alone/among pairs measured
	StopSeconds    float64 `json:"stop_s,omitempty"`                   // SIGTERM → the daemon removed every device and exited
	// The kernel's own cost for as many devices, measured in the same
	// namespace just before: gretun cannot be faster than this, because
	// most of it is the kernel's (IPv6 walks its routing table for every
	// device brought up, given an MTU or removed).
	KernelCreateSeconds float64 `json:"kernel_create_s,omitempty"` // ip -batch: veth ends made, MTU set, up
	KernelStopSeconds   float64 `json:"kernel_stop_s,omitempty"`   // ip -batch: the same devices removed
	Error               string  `json:"error,omitempty"`
}

// setRSS fills the memory figures from VmRSS readings in kB (1 MB here is
// 1024 kB, as /proc counts).
func (s *ScaleResult) setRSS(baselineKB, totalKB int64) {
	s.RSSBaselineMB = float64(baselineKB) / 1024
	s.RSSTotalMB = float64(totalKB) / 1024
	s.RSSPerTunnelKB = 0
	if s.Created > 0 && baselineKB > 0 && totalKB > baselineKB {
		s.RSSPerTunnelKB = float64(totalKB-baselineKB) / float64(s.Created)
	}
}

// setTCP fills the TCP figures from the rounds measured so far: the median
// of each, and the median of the rounds' ratios.
func (s *ScaleResult) setTCP(alone, among []float64) {
	var ratios []float64
	for i := range min(len(alone), len(among)) {
		if alone[i] > 0 && among[i] > 0 {
			ratios = append(ratios, among[i]/alone[i])
		}
	}
	s.Rounds = len(ratios)
	s.TCPAloneGbps, s.TCPAmongGbps, s.TCPRatio = median(alone), median(among), median(ratios)
}

// median is the middle value (the mean of the middle two), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// scaleConfig is a daemon config file for namespace a with n GRE tunnels
// t1…tN to b, told apart by their keys.
func scaleConfig(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# gretun bench: %d tunnels in one daemon\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "t%d mode gre remote %s local %s key %d\n", i, underlayB, underlayA, i)
	}
	return b.String()
}

// parseVmRSS returns the VmRSS of a /proc/PID/status text, in kB.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != "VmRSS" {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q is not \"N kB\"", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("VmRSS line %q has no size", strings.TrimSpace(line))
		}
		return kb, nil
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or a process that has exited)")
}

// countLinks counts the devices of `ip -o link` output whose names are in
// want ("12: t1: <POINTOPOINT,…" or "3: eth0@if2: …").
func countLinks(ipOutput string, want map[string]bool) int {
	n := 0
	for _, line := range strings.Split(ipOutput, "\n") {
		f := strings.SplitN(line, ": ", 3)
		if len(f) < 3 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSpace(f[1]), "@")
		if want[name] {
			n++
		}
	}
	return n
}

// tunnelNames is the set t1…tN.
func tunnelNames(n int) map[string]bool {
	m := make(map[string]bool, n)
	for i := 1; i <= n; i++ {
		m["t"+strconv.Itoa(i)] = true
	}
	return m
}

// realPID returns the process that `ip netns exec` became: it execs the
// command in place, so this is normally pid itself; should it have forked
// instead, the command is its only child.
func realPID(pid int) (int, error) {
	for depth := 0; depth < 3; depth++ {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			return 0, fmt.Errorf("process %d: %v", pid, err)
		}
		if strings.TrimSpace(string(comm)) != "ip" {
			return pid, nil
		}
		kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		f := strings.Fields(string(kids))
		if err != nil || len(f) != 1 {
			return 0, fmt.Errorf("process %d is still `ip netns exec`, with children %q", pid, f)
		}
		if pid, err = strconv.Atoi(f[0]); err != nil {
			return 0, fmt.Errorf("process %d: child %q", pid, f[0])
		}
	}
	return 0, fmt.Errorf("no gretun process under `ip netns exec` %d", pid)
}

// rssKB reads the resident memory of the process p runs, in kB.
func rssKB(p *proc) (int64, error) {
	pid, err := realPID(p.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %v", pid, err)
	}
	kb, err := parseVmRSS(string(status))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %v", pid, err)
	}
	return kb, nil
}

// scaleRun is one scale measurement in progress.
type scaleRun struct {
	*env
	dir    string // holds the config files
	daemon *proc  // the daemon running in a, if any
}

// startDaemon writes a config of n tunnels, starts `gretun daemon -c` with
// it in namespace a and waits until the daemon has logged that it runs and
// all n devices exist. It returns the time that took and how many devices
// there were; the daemon is left running in s.daemon.
func (s *scaleRun) startDaemon(n int) (time.Duration, int, error) {
	file := filepath.Join(s.dir, fmt.Sprintf("scale-%d.conf", n))
	if err := os.WriteFile(file, []byte(scaleConfig(n)), 0o644); err != nil {
		return 0, 0, err
	}
	names := tunnelNames(n)
	start := time.Now()
	p, err := startProc(s.a, s.cfg.gretun, "daemon", "-c", file)
	if err != nil {
		return 0, 0, err
	}
	s.daemon = p
	logged, count := false, 0
	for {
		if ok, _ := p.exited(); ok {
			return 0, count, fmt.Errorf("daemon with %d tunnels: %s", n, p.describe())
		}
		// The daemon logs only after adding every tunnel, so listing the
		// devices before then would only slow it down.
		if !logged {
			logged = strings.Contains(p.out.String(), readyLog)
		}
		if logged {
			out, err := execIn(s.ctx, s.a, "ip", "-o", "link")
			if err != nil {
				return 0, count, err
			}
			if count = countLinks(string(out), names); count == n {
				return time.Since(start), count, nil
			}
		}
		if time.Since(start) > createTimeout {
			if !logged {
				return 0, count, fmt.Errorf("daemon with %d tunnels did not log %q within %v: %s", n, readyLog, createTimeout, p.describe())
			}
			return 0, count, fmt.Errorf("daemon with %d tunnels: %d devices after %v", n, count, createTimeout)
		}
		wait := 10 * time.Millisecond
		if logged {
			wait = 50 * time.Millisecond
		}
		select {
		case <-s.ctx.Done():
			return 0, count, s.ctx.Err()
		case <-time.After(wait):
		}
	}
}

// stopDaemon stops the daemon, letting it remove its devices, and returns
// how long that took; 0 if it had to be killed.
func (s *scaleRun) stopDaemon() time.Duration {
	if s.daemon == nil {
		return 0
	}
	start := time.Now()
	clean := s.daemon.stopWithin(daemonGrace)
	s.daemon = nil
	if !clean {
		return 0
	}
	return time.Since(start)
}

// kernelLinks is the reference for the daemon's create and stop times: the
// kernel making n devices (veth pairs, so n rounded up to even), giving
// them the tunnels' MTU and bringing them up, then removing them, each by
// one `ip -batch` in namespace a, where the daemon makes its tunnels. A
// veth has a carrier as a gretun TUN has, so IPv6 configures both alike.
func (s *scaleRun) kernelLinks(n int) (up, down time.Duration, err error) {
	var add, del strings.Builder
	for i := 1; i <= n; i += 2 {
		fmt.Fprintf(&add, "link add k%d type veth peer name k%d\n", i, i+1)
		fmt.Fprintf(&del, "link del k%d\n", i)
		for _, k := range []int{i, i + 1} {
			fmt.Fprintf(&add, "link set dev k%d mtu %d\nlink set dev k%d up\n", k, scaleMTU, k)
		}
	}
	batch := func(name, cmds string) (time.Duration, error) {
		file := filepath.Join(s.dir, name)
		if err := os.WriteFile(file, []byte(cmds), 0o644); err != nil {
			return 0, err
		}
		start := time.Now()
		if _, err := execIn(s.ctx, s.a, "ip", "-batch", file); err != nil {
			return 0, fmt.Errorf("kernel reference: %v", err)
		}
		return time.Since(start), nil
	}
	if up, err = batch("kernel-add.batch", add.String()); err != nil {
		batch("kernel-del.batch", del.String()) // whatever was made
		return 0, 0, err
	}
	down, err = batch("kernel-del.batch", del.String())
	return up, down, err
}

// busyTCP gives a's end of t1 its inner address and measures TCP through it.
func (s *scaleRun) busyTCP() (float64, error) {
	if err := s.innerUp(s.sides()[0], scaleDev); err != nil {
		return 0, err
	}
	tcp, _, err := runIperf(s.ctx, s.a, innerB, s.cfg.seconds)
	if err != nil {
		return 0, fmt.Errorf("TCP through %s: %w", scaleDev, err)
	}
	return tcp.Gbps(), nil
}

// runScale measures, on a fresh topology: the daemon's memory with no
// tunnels; TCP through t1 with a daemon holding only t1; then a daemon
// started with n tunnels (time to create, memory) and TCP through its t1.
// b runs `gretun run t1` throughout. It always returns a result, with
// Error set on failure, and the namespaces are gone when it returns.
func runScale(ctx context.Context, cfg *config, n int, progress func(string)) (res ScaleResult) {
	res = ScaleResult{Tunnels: n}
	tn, err := testnet.New("gb")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer tn.Close()
	s := &scaleRun{env: &env{ctx: ctx, cfg: cfg}}
	defer func() {
		if s.daemon != nil {
			progress("stopping the daemon")
			s.stopDaemon()
		}
		for _, p := range s.tunnel {
			p.stop()
		}
	}()
	fail := func(err error) ScaleResult {
		msg := err.Error()
		for _, p := range append([]*proc{s.daemon}, s.tunnel...) {
			if p == nil {
				continue
			}
			if d := p.describe(); !strings.Contains(msg, d) {
				msg += "; " + d
			}
		}
		res.Error = msg
		return res
	}
	if s.dir, err = os.MkdirTemp("", "gretun-bench-scale-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(s.dir)

	progress("setting up")
	if err := s.underlay(tn); err != nil {
		return fail(err)
	}

	progress(fmt.Sprintf("kernel reference: %d veth devices up and removed", n))
	up, down, err := s.kernelLinks(n)
	if err != nil {
		return fail(err)
	}
	res.KernelCreateSeconds, res.KernelStopSeconds = up.Seconds(), down.Seconds()

	progress("daemon with 0 tunnels")
	if _, _, err := s.startDaemon(0); err != nil {
		return fail(err)
	}
	baseKB, err := rssKB(s.daemon)
	if err != nil {
		return fail(fmt.Errorf("daemon with 0 tunnels: %v", err))
	}
	s.stopDaemon()
	res.RSSBaselineMB = float64(baseKB) / 1024

	b := s.sides()[1]
	if err := s.startTunnel(b, scaleDev, cfg.gretun, "run", scaleDev, "mode", "gre",
		"remote", b.remote, "local", b.local, "key", "1"); err != nil {
		return fail(err)
	}
	if err := s.innerUp(b, scaleDev); err != nil {
		return fail(err)
	}
	server, err := startProc(s.b, "iperf3", "-s")
	if err != nil {
		return fail(err)
	}
	defer server.stop()

	// Alone and among alternate, scaleRounds times, and the ratio is the
	// median of each round's: on a shared machine one pair of 10 s tests
	// cannot resolve 5 %.
	var alone, among []float64
	for round := 1; round <= scaleRounds; round++ {
		step := func(what string) {
			progress(fmt.Sprintf("round %d/%d: %s", round, scaleRounds, what))
		}
		step(fmt.Sprintf("daemon with %s only; TCP, %ds", scaleDev, cfg.seconds))
		if _, _, err := s.startDaemon(1); err != nil {
			return fail(err)
		}
		a, err := s.busyTCP()
		if err != nil {
			return fail(fmt.Errorf("alone: %w", err))
		}
		s.stopDaemon()

		step(fmt.Sprintf("daemon with %d tunnels", n))
		took, count, err := s.startDaemon(n)
		if round == 1 {
			res.Created = count
		}
		if err != nil {
			return fail(err)
		}
		if round == 1 {
			res.CreateSeconds = took.Seconds()
			totalKB, err := rssKB(s.daemon)
			if err != nil {
				return fail(fmt.Errorf("daemon with %d tunnels: %v", n, err))
			}
			res.setRSS(baseKB, totalKB)
		}
		step(fmt.Sprintf("TCP through %s among %d, %ds", scaleDev, n, cfg.seconds))
		m, err := s.busyTCP()
		if err != nil {
			return fail(fmt.Errorf("among %d: %w", n, err))
		}
		if round == 1 {
			afterKB, err := rssKB(s.daemon)
			if err != nil {
				return fail(fmt.Errorf("daemon with %d tunnels after TCP: %v", n, err))
			}
			res.RSSAfterTCPMB = float64(afterKB) / 1024
		}
		alone, among = append(alone, a), append(among, m)
		res.setTCP(alone, among)
		step(fmt.Sprintf("stopping the daemon: removing %d devices", n))
		res.StopSeconds = s.stopDaemon().Seconds()
	}
	return res
}
