package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// The topology every row gets, fresh: namespace a and namespace b joined by
// a veth pair (eth0 in both) carrying the underlay; tunnel rows add inner
// addresses on a tunnel device, and traffic flows a → b.
const (
	underlayA  = "192.0.2.1"
	underlayB  = "192.0.2.2"
	underlay6A = "2001:db8::1" // the same veth's IPv6 underlay (ip6gre, ipip6)
	underlay6B = "2001:db8::2"
	innerA     = "198.51.100.1"
	innerB     = "198.51.100.2"
	tunDev     = "gbtun0" // tunnel device name in both namespaces
	// classicMTU is the veth MTU minus the classic loop's 24-byte
	// IPv4+GRE header, as the kernel's GRE device would set it.
	classicMTU = 1500 - 24
)

// row is one configuration to measure.
type row struct {
	name  string // for --only and the JSON
	title string // for the table and chart
	// setup builds the row's data path on top of the underlay and
	// returns the address in namespace b that iperf3 should reach.
	setup func(e *env) (string, error)
	// streams is the TCP test's parallel streams (iperf3 -P); 0 is one.
	streams int
	// step rows run only when --only names them.
	step bool
}

// rows is every configuration, in table order.
var rows = []row{
	{name: "veth", title: "direct veth", setup: func(e *env) (string, error) { return underlayB, nil }},
	{name: "vxlan", title: "kernel VXLAN", setup: setupVXLAN},
	{name: classicName, title: "classic loop (GRE)", setup: setupClassic},
	{name: "ipip", title: "gretun IPIP", setup: gretunSetup("ipip")},
	{name: "gre", title: "gretun GRE", setup: gretunSetup("gre")},
	// The opt-in AF_PACKET send path (BENCHMARKS.md, "Underlay send path").
	{name: "gre-packet", title: "gretun GRE (AF_PACKET)", setup: gretunSetup("gre", "underlay", "packet")},
	{name: "gre-kcs", title: "gretun GRE key+csum+seq", setup: gretunSetup("gre", "key", "42", "csum", "seq")},
	// Over the IPv6 underlay, with Linux's defaults (encaplimit 4).
	{name: "ip6gre", title: "gretun ip6gre", setup: gretunSetup("ip6gre")},
	{name: "ipip6", title: "gretun ipip6", setup: gretunSetup("ipip6")},
	// GRE and IPIP inside UDP (encap fou): a UDP socket with UDP_SEGMENT
	// and UDP_GRO instead of a raw one.
	{name: "gre-fou", title: "gretun GRE/FOU", setup: gretunSetup("gre", "encap", "fou")},
	{name: "ipip-fou", title: "gretun IPIP/FOU", setup: gretunSetup("ipip", "encap", "fou", "encap-dport", "5555")},
	// The same tunnel carrying four TCP streams at once (iperf3 -P 4):
	// issue 14 wants their total no lower than one stream's.
	{name: p4Name, title: "gretun GRE/FOU, 4 TCP streams", setup: gretunSetup("gre", "encap", "fou"), streams: 4},
	// What each step of the GRE/FOU data path buys: the same row with
	// one step off (GRETUN_BENCH_OFF, cmd/gretun/benchsteps.go).
	{name: "gre-fou-nogso", title: "gretun GRE/FOU, no UDP GSO", setup: stepSetup("gso"), step: true},
	{name: "gre-fou-nogro", title: "gretun GRE/FOU, no UDP GRO", setup: stepSetup("gro"), step: true},
	{name: "gre-fou-nocoalesce", title: "gretun GRE/FOU, no TUN write coalescing", setup: stepSetup("coalesce"), step: true},
	{name: "gre-fou-notso", title: "gretun GRE/FOU, no TUN offloads", setup: stepSetup("tso"), step: true},
	{name: "gre-fou-none", title: "gretun GRE/FOU, none of the four", setup: stepSetup("gso,gro,coalesce,tso"), step: true},
	// A netstack tunnel on side a, iperf3 reaching it through forwarded
	// ports (README, "No TUN, no privileges"); gretun GRE with a TUN on b.
	{name: "netstack", title: "gretun GRE netstack (forward)", setup: setupNetstack},
	// Ethernet over GRE between TAP devices, addressed: ARP, then the
	// same traffic as the gre row with a 14-byte Ethernet header more.
	{name: "gretap", title: "gretun gretap", setup: gretunSetup("gretap")},
	// The same inside UDP (GRE-in-UDP carrying Ethernet, as Linux's
	// `type gretap … encap fou`).
	{name: "gretap-fou", title: "gretun gretap/FOU", setup: gretunSetup("gretap", "encap", "fou")},
}

// references are the rows that run no gretun.
var references = map[string]bool{"veth": true, "vxlan": true, classicName: true}

// rowNames lists the valid --only names.
func rowNames() []string {
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	return names
}

// env is what a row's setup works with.
type env struct {
	ctx    context.Context
	cfg    *config
	a, b   string  // namespace names
	tunnel []*proc // tunnel processes, described when the row fails
}

// side is one end of the topology.
type side struct {
	ns, local, remote, inner string
	local6, remote6          string
}

func (e *env) sides() [2]side {
	return [2]side{
		{e.a, underlayA, underlayB, innerA, underlay6A, underlay6B},
		{e.b, underlayB, underlayA, innerB, underlay6B, underlay6A},
	}
}

// ip runs an iproute2 command in ns.
func (e *env) ip(ns string, args ...string) error {
	_, err := execIn(e.ctx, ns, append([]string{"ip"}, args...)...)
	return err
}

// innerUp gives the tunnel device its inner address and brings it up.
func (e *env) innerUp(s side, dev string) error {
	if err := e.ip(s.ns, "addr", "add", s.inner+"/24", "dev", dev); err != nil {
		return err
	}
	return e.ip(s.ns, "link", "set", "dev", dev, "up")
}

// startTunnel starts a tunnel process in s.ns and waits until it has
// created dev; it fails early, with the process's output, if it exits.
func (e *env) startTunnel(s side, dev string, args ...string) error {
	p, err := startProc(s.ns, args...)
	if err != nil {
		return err
	}
	e.tunnel = append(e.tunnel, p)
	err = poll(e.ctx, func() (bool, error) {
		if ok, _ := p.exited(); ok {
			return false, fmt.Errorf("no device %s: %s", dev, p.describe())
		}
		return e.ip(s.ns, "link", "show", "dev", dev) == nil, nil
	})
	if errors.Is(err, errPollTimeout) {
		return fmt.Errorf("no device %s after 10s: %s", dev, p.describe())
	}
	return err
}

// errPollTimeout is poll's error when its 10 s run out.
var errPollTimeout = errors.New("timed out")

// poll calls check every 50 ms until it is done or fails, for at most
// 10 s (errPollTimeout), or until ctx ends.
func poll(ctx context.Context, check func() (done bool, err error)) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if done, err := check(); done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errPollTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// underlay creates namespaces a and b in n, joined by veth, with the
// underlay addresses.
func (e *env) underlay(n *testnet.Net) error {
	var err error
	if e.a, err = n.NS("a"); err != nil {
		return err
	}
	if e.b, err = n.NS("b"); err != nil {
		return err
	}
	if err := n.Veth(e.a, "eth0", e.b, "eth0"); err != nil {
		return err
	}
	for _, a := range []struct{ ns, cidr string }{
		{e.a, underlayA + "/24"}, {e.b, underlayB + "/24"}, {e.a, underlay6A + "/64"}, {e.b, underlay6B + "/64"},
	} {
		if err := n.Addr(a.ns, "eth0", a.cidr); err != nil {
			return err
		}
	}
	return nil
}

// setupVXLAN is the kernel-tunnel reference: this kernel has no GRE or
// IPIP modules, and VXLAN does the same per-packet work (encapsulate,
// route, decapsulate) inside the kernel, with offloads.
func setupVXLAN(e *env) (string, error) {
	for _, s := range e.sides() {
		if err := e.ip(s.ns, "link", "add", "vx0", "type", "vxlan", "id", "42",
			"remote", s.remote, "local", s.local, "dstport", "4789", "dev", "eth0"); err != nil {
			return "", err
		}
		if err := e.innerUp(s, "vx0"); err != nil {
			return "", err
		}
	}
	return innerB, nil
}

// setupClassic runs the classic one-packet-per-syscall loop on both sides.
func setupClassic(e *env) (string, error) {
	bin, err := e.cfg.classicBinary(e.ctx)
	if err != nil {
		return "", err
	}
	for _, s := range e.sides() {
		if err := e.startTunnel(s, tunDev, bin, "-name", tunDev, "-local", s.local, "-remote", s.remote); err != nil {
			return "", err
		}
		if err := e.ip(s.ns, "link", "set", "dev", tunDev, "mtu", strconv.Itoa(classicMTU)); err != nil {
			return "", err
		}
		if err := e.innerUp(s, tunDev); err != nil {
			return "", err
		}
	}
	return innerB, nil
}

// p4Name is the row of four parallel streams, which Report.Targets
// compares with the single stream of row "gre-fou".
const p4Name = "gre-fou-p4"

// stepSetup is the gre-fou row's setup with the data path steps off
// turned off (GRETUN_BENCH_OFF) in both tunnel processes.
func stepSetup(off string) func(e *env) (string, error) {
	return gretunSetupEnv([]string{"env", "GRETUN_BENCH_OFF=" + off}, "gre", "encap", "fou")
}

// gretunSetup returns the setup of a gretun row: `gretun run NAME mode
// MODE remote R local L [opts…]` on both sides, over the IPv6 underlay for
// the IPv6 modes.
func gretunSetup(mode string, opts ...string) func(e *env) (string, error) {
	return gretunSetupEnv(nil, mode, opts...)
}

// gretunSetupEnv is gretunSetup with the command prefixed by prefix (an
// env(1) call setting variables).
func gretunSetupEnv(prefix []string, mode string, opts ...string) func(e *env) (string, error) {
	return func(e *env) (string, error) {
		for _, s := range e.sides() {
			remote, local := s.remote, s.local
			if mode == "ip6gre" || mode == "ipip6" || mode == "ip6ip6" {
				remote, local = s.remote6, s.local6
			}
			args := append(append(slices.Clip(prefix), e.cfg.gretun, "run", tunDev, "mode", mode,
				"remote", remote, "local", local), opts...)
			if err := e.startTunnel(s, tunDev, args...); err != nil {
				return "", err
			}
			if err := e.innerUp(s, tunDev); err != nil {
				return "", err
			}
		}
		return innerB, nil
	}
}

// setupNetstack runs a GRE tunnel whose side a is a userspace stack at
// innerA, with iperf3's port forwarded into it from loopback (TCP for the
// stream and the control connection, UDP for the datagrams), and a TUN
// device on side b. iperf3 on a reaches 127.0.0.1, which is b.
func setupNetstack(e *env) (string, error) {
	sides := e.sides()
	a, b := sides[0], sides[1]
	if err := e.ip(a.ns, "link", "set", "dev", "lo", "up"); err != nil {
		return "", err
	}
	iperf := net.JoinHostPort(innerB, "5201")
	p, err := startProc(a.ns, e.cfg.gretun, "run", tunDev, "mode", "gre", "remote", a.remote, "local", a.local,
		"netstack", innerA+"/24", "forward", "tcp", "5201", iperf, "forward", "udp", "5201", iperf)
	if err != nil {
		return "", err
	}
	e.tunnel = append(e.tunnel, p)
	// `run` serves its control socket once the stack and its forwarded
	// ports are up.
	notUp := errors.New("netstack tunnel not up")
	err = poll(e.ctx, func() (bool, error) {
		if _, err := execIn(e.ctx, a.ns, e.cfg.gretun, "tunnel", "show"); err == nil {
			return true, nil
		}
		if ok, _ := p.exited(); ok {
			return false, notUp
		}
		return false, nil
	})
	if errors.Is(err, notUp) || errors.Is(err, errPollTimeout) {
		return "", fmt.Errorf("netstack tunnel not up: %s", p.describe())
	}
	if err != nil {
		return "", err
	}
	if err := e.startTunnel(b, tunDev, e.cfg.gretun, "run", tunDev, "mode", "gre", "remote", b.remote, "local", b.local); err != nil {
		return "", err
	}
	if err := e.innerUp(b, tunDev); err != nil {
		return "", err
	}
	return "127.0.0.1", nil
}

// runRow builds a fresh topology, sets up r and measures it. It always
// returns a Result; Error says what went wrong, and the namespaces are gone
// when it returns.
func runRow(ctx context.Context, cfg *config, r row, progress func(string)) (res Result) {
	res = Result{Name: r.name, Title: r.title}
	n, err := testnet.New("gb")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer n.Close()
	e := &env{ctx: ctx, cfg: cfg}
	defer func() {
		for _, p := range e.tunnel {
			p.stop()
		}
	}()
	fail := func(err error) Result {
		msg := err.Error()
		for _, p := range e.tunnel {
			if d := p.describe(); !strings.Contains(msg, d) {
				msg += "; " + d
			}
		}
		res.Error = msg
		return res
	}

	progress("setting up")
	if err := e.underlay(n); err != nil {
		return fail(err)
	}
	target, err := r.setup(e)
	if err != nil {
		return fail(err)
	}

	server, err := startProc(e.b, "iperf3", "-s")
	if err != nil {
		return fail(err)
	}
	defer server.stop()
	// A forwarded port (the netstack row) accepts before the server
	// listens and then resets the client, which is no refusal to retry.
	if err := waitListening(ctx, e.b, 5201); err != nil {
		return fail(err)
	}

	progress(fmt.Sprintf("TCP, %ds", cfg.seconds))
	var parallel []string
	if r.streams > 1 {
		parallel = []string{"-P", strconv.Itoa(r.streams)}
	}
	tcp, cpu, err := runIperf(ctx, e.a, target, cfg.seconds, parallel...)
	if err != nil {
		return fail(fmt.Errorf("TCP: %w", err))
	}
	res.TCPGbps = tcp.Gbps()
	res.CPUPerGB = CPUSecondsPerGB(cpu, tcp.Bytes)

	progress(fmt.Sprintf("UDP 64-byte, %ds", cfg.seconds))
	before, err := udpArrived(ctx, e.b)
	if err != nil {
		return fail(err)
	}
	udp, _, err := runIperf(ctx, e.a, target, cfg.seconds, "-u", "-l", "64", "-b", "0")
	if err != nil {
		return fail(fmt.Errorf("UDP: %w", err))
	}
	after, err := udpArrived(ctx, e.b)
	if err != nil {
		return fail(err)
	}
	res.UDPKpps = udp.ReceivedPPS() / 1000
	if udp.Seconds > 0 && after > before {
		res.DeliveredKpps = float64(after-before) / udp.Seconds / 1000
	}
	return res
}

// waitListening waits until a TCP socket in ns listens on port.
func waitListening(ctx context.Context, ns string, port int) error {
	err := poll(ctx, func() (bool, error) {
		out, err := execIn(ctx, ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		return err == nil && len(bytes.TrimSpace(out)) > 0, nil
	})
	if errors.Is(err, errPollTimeout) {
		return fmt.Errorf("nothing listens on TCP port %d in %s after 10 s", port, ns)
	}
	return err
}

// runIperf runs an iperf3 client in ns against target and returns the
// result and the machine's busy CPU seconds during the run. While the
// server is still starting (connection refused) it retries.
func runIperf(ctx context.Context, ns, target string, seconds int, extra ...string) (IperfResult, float64, error) {
	args := append([]string{"iperf3", "-c", target, "-t", strconv.Itoa(seconds), "-J", "--connect-timeout", "3000"}, extra...)
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
		before, err := ReadCPUTimes()
		if err != nil {
			cancel()
			return IperfResult{}, 0, err
		}
		out, runErr := execIn(cctx, ns, args...)
		after, err := ReadCPUTimes()
		cancel()
		if err != nil {
			return IperfResult{}, 0, err
		}
		if ctx.Err() != nil {
			return IperfResult{}, 0, ctx.Err()
		}
		res, err := ParseIperf(out)
		if errors.Is(err, errIperfConnect) && strings.Contains(err.Error(), "refused") && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if errors.Is(err, errIperfConnect) {
			return IperfResult{}, 0, fmt.Errorf("no connection through the data path to %s: %v", target, err)
		}
		if err != nil {
			if runErr != nil {
				return IperfResult{}, 0, runErr
			}
			return IperfResult{}, 0, err
		}
		return res, after.BusySecondsSince(before), nil
	}
}

// udpArrived is how many UDP datagrams have reached the UDP layer of ns:
// those queued to a socket (InDatagrams) and those dropped because the
// socket was full (RcvbufErrors), from /proc/net/snmp (RFC 4113's
// udpInDatagrams plus Linux's own counter). Its growth over the UDP test
// is what the path under test delivered, whether or not the receiving
// iperf3, short of CPU, read it all.
func udpArrived(ctx context.Context, ns string) (uint64, error) {
	out, err := execIn(ctx, ns, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseUDPArrived(string(out))
}

// parseUDPArrived reads InDatagrams + RcvbufErrors from the text of
// /proc/net/snmp: a "Udp:" line of names, then one of values.
func parseUDPArrived(snmp string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		var sum uint64
		found := 0
		for i, name := range names {
			if (name == "InDatagrams" || name == "RcvbufErrors") && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc/net/snmp: Udp %s: %v", name, err)
				}
				sum += v
				found++
			}
		}
		if found != 2 {
			break
		}
		return sum, nil
	}
	return 0, errors.New("/proc/net/snmp: no Udp InDatagrams and RcvbufErrors")
}
