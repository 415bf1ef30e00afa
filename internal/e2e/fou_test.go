package e2e

import (
	"strings"
	"testing"

	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
)

// noNetRaw runs a command as root without CAP_NET_RAW (gone from the
// bounding and inheritable sets, so not regained at exec), keeping
// CAP_NET_ADMIN for the TUN device: what a UDP tunnel needs, and all.
var noNetRaw = []string{"setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"}

// startNoNetRaw starts `gretun run NAME WORDS…` in ns without CAP_NET_RAW
// and waits for its device.
func (tp *Topology) startNoNetRaw(ns, name string, words ...string) *Proc {
	tp.T.Helper()
	p := tp.startPrefixed(ns, noNetRaw, append([]string{"run", name}, words...)...)
	tp.WaitLink(ns, name, p)
	return p
}

// startPrefixed is Start with a command (setpriv …) in front of gretun.
func (tp *Topology) startPrefixed(ns string, prefix []string, args ...string) *Proc {
	tp.T.Helper()
	out := &testnet.Buffer{}
	cmd, err := tp.Net.Start(ns, out, out, append(append(prefix[:len(prefix):len(prefix)], Bin(tp.T, "gretun")), args...)...)
	if err != nil {
		tp.T.Fatal(err)
	}
	return &Proc{Cmd: cmd, Out: out}
}

// TestFOUClassic is the classic scenario through GRE and IPIP inside UDP
// (encap fou), with gretun running without CAP_NET_RAW: ping and a
// checksummed 4 MiB TCP transfer both ways, GRE with key, checksums and
// sequence numbers, each router receiving on its own port. A plain GRE
// tunnel, which needs a raw socket, is refused there in one line naming
// the capability.
func TestFOUClassic(t *testing.T) {
	needSetpriv(t)
	for _, c := range []struct {
		name, a, b string
		mtu        int
	}{
		{"gre", "mode gre ttl 255 key 42 csum seq encap fou", "mode gre ttl 255 key 42 csum seq encap fou", 1500 - 20 - 8 - 16},
		{"ipip", "mode ipip encap fou encap-dport 5555 fou-port 5556", "mode ipip encap fou encap-dport 5556 fou-port 5555", 1500 - 20 - 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := Classic(t)
			a := tp.startNoNetRaw(tp.A, "netb", append([]string{"remote", UnderB, "local", UnderA}, strings.Fields(c.a)...)...)
			b := tp.startNoNetRaw(tp.B, "neta", append([]string{"remote", UnderA, "local", UnderB}, strings.Fields(c.b)...)...)
			tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
			tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
			tp.carryBothWays()
			if s := tp.status(tp.A, "netb"); !strings.Contains(s.Line, " encap fou ") || s.MTU != c.mtu {
				t.Errorf("A shows %q, MTU %d", s.Line, s.MTU)
			}
			r := tp.cmd(tp.A, noNetRaw, Bin(t, "gretun"), "run", "plain", "mode", "gre", "remote", UnderB, "local", UnderA)
			wantError(t, "plain GRE without CAP_NET_RAW", r, "CAP_NET_RAW", "encap fou")
			for _, p := range []*Proc{a, b} {
				if err := p.Stop(); err != nil {
					t.Errorf("gretun run exited with %v: %s", err, p.Log())
				}
			}
		})
	}
}

// TestFOUKeepalive: keepalives over GRE-in-UDP on A only; B, a gretun
// without CAP_NET_RAW, returns them inside UDP and A's line stays up;
// stopping B takes it down.
func TestFOUKeepalive(t *testing.T) {
	needSetpriv(t)
	tp := Pair(t)
	tp.Run(tp.A, "spoke", "mode", "gre", "key", "3", "encap", "fou", "remote", UnderB, "local", UnderA, "keepalive", kaPeriod, kaRetries)
	b := tp.startNoNetRaw(tp.B, "hub", "mode", "gre", "key", "3", "encap", "fou", "remote", UnderA, "local", UnderB)
	tp.waitFor("5 keepalives returned", func() bool { return tp.keepalive(tp.A, "spoke").Received >= 5 })
	if !tp.carrier(tp.A, "spoke") {
		t.Errorf("spoke has no carrier while the hub reflects")
	}
	if s := tp.status(tp.B, "hub"); s.Stats.Reflected < 5 {
		t.Errorf("hub reflected %d probes", s.Stats.Reflected)
	}
	b.Stop()
	tp.waitFor("spoke down once the hub is gone", func() bool { return !tp.carrier(tp.A, "spoke") })
}

// TestFOUKeepaliveIPv6: keepalives on an ip6gre tunnel inside UDP, on A
// only; B's gretun returns the probes (IPv6/UDP to A's port) inside UDP
// and A's line comes up; stopping B takes it down.
func TestFOUKeepaliveIPv6(t *testing.T) {
	tp := Pair(t)
	tp.underlay6()
	tp.Run(tp.A, "spoke", "mode", "ip6gre", "key", "3", "encap", "fou", "remote", Under6B, "local", Under6A, "keepalive", kaPeriod, kaRetries)
	b := tp.Run(tp.B, "hub", "mode", "ip6gre", "key", "3", "encap", "fou", "remote", Under6A, "local", Under6B)
	tp.waitFor("5 keepalives returned", func() bool {
		k := tp.keepalive(tp.A, "spoke")
		return k.State == "up" && k.Received >= 5
	})
	if s := tp.status(tp.B, "hub"); s.Stats.Reflected < 5 || s.Stats.RxPackets != 0 {
		t.Errorf("hub reflected %d probes, gave %d packets to its device", s.Stats.Reflected, s.Stats.RxPackets)
	}
	if err := b.Stop(); err != nil {
		t.Errorf("B exited with %v: %s", err, b.Log())
	}
	tp.waitFor("spoke down once the hub is gone", func() bool { return !tp.carrier(tp.A, "spoke") })
}

// TestFOUKeepaliveIPv6KernelPeer: the Linux kernel's ip6gre over FOU in a
// qemu guest returns gretun's ip6gre keepalives inside UDP (their inner
// packet IPv6/UDP to gretun's port) by forwarding them while it forwards
// IPv6, and gretun's line goes down when it stops.
func TestFOUKeepaliveIPv6KernelPeer(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)
	guest := func(cmd string) {
		t.Helper()
		if out, err := g.Run(cmd); err != nil {
			t.Fatalf("guest: %s: %v: %s", cmd, err, out)
		}
	}
	tp := &Topology{Net: n, T: t, A: ns}
	tp.must(n.Addr(ns, "kp0", Under6A+"/64"))
	guest("ip -6 addr add " + Under6B + "/64 dev eth0 nodad && ip fou add port 4754 ipproto 47 -6 && ip link add gt1 type ip6gre remote " + Under6A +
		" local " + Under6B + " key 9 encap fou encap-sport auto encap-dport 4754 && ip link set gt1 up")
	guest("echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
	tp.Run(ns, "gt1", "mode", "ip6gre", "remote", Under6B, "local", Under6A, "key", "9", "encap", "fou", "keepalive", kaPeriod, "5")
	tp.waitFor("10 keepalives returned by the kernel", func() bool {
		k := tp.keepalive(ns, "gt1")
		return k.State == "up" && k.Received >= 10
	})
	guest("echo 0 > /proc/sys/net/ipv6/conf/all/forwarding")
	tp.waitFor("line down once the guest stops forwarding", func() bool { return !tp.carrier(ns, "gt1") })
	if k := tp.keepalive(ns, "gt1"); k.Rejected != 0 {
		t.Errorf("replies rejected: %s", k.Summary)
	}
}

// TestFOUDaemonNoNetRaw: a daemon without CAP_NET_RAW serves GRE-in-UDP
// tunnels; a plain GRE tunnel added to it is refused in one line naming
// the capability, and so is a daemon whose config file has one, and an
// ip6gre encap fou tunnel with the default encapsulation limit, added,
// changed to it or reloaded.
func TestFOUDaemonNoNetRaw(t *testing.T) {
	needSetpriv(t)
	tp := Pair(t)
	conf := t.TempDir() + "/gretun.conf"
	writeFile(t, conf, "plain mode gre remote "+UnderB+" local "+UnderA+"\n")
	r := tp.cmd(tp.A, noNetRaw, Bin(t, "gretun"), "daemon", "-c", conf)
	wantError(t, "daemon with a plain GRE tunnel, without CAP_NET_RAW", r, "missing capability CAP_NET_RAW", "encap fou")

	tp.underlay6()
	writeFile(t, conf, "fou mode gre encap fou remote "+UnderB+" local "+UnderA+"\n")
	d := tp.startPrefixed(tp.A, noNetRaw, "daemon", "-c", conf)
	tp.waitSocket(tp.A, d)
	r = tp.G(tp.A, "tunnel", "add", "plain", "mode", "gre", "remote", UnderB, "local", UnderA)
	wantError(t, "plain GRE added to a daemon without CAP_NET_RAW", r, "CAP_NET_RAW", "encap fou")
	// Over IPv6 the default encapsulation limit (IPV6_DSTOPTS) needs
	// CAP_NET_RAW too: refused up front, by add, change and reload alike,
	// rather than created to fail every send.
	six := []string{"mode", "ip6gre", "encap", "fou", "remote", Under6B, "local", Under6A}
	r = tp.G(tp.A, append([]string{"tunnel", "add", "six"}, six...)...)
	wantError(t, "ip6gre encap fou with the default encaplimit added without CAP_NET_RAW", r, "missing capability CAP_NET_RAW", "encaplimit none")
	tp.add(tp.A, "sixnone", append(six, "encaplimit", "none")...)
	r = tp.G(tp.A, "tunnel", "change", "sixnone", "encaplimit", "4")
	wantError(t, "a change to the default encaplimit without CAP_NET_RAW", r, "missing capability CAP_NET_RAW")
	if s := tp.status(tp.A, "sixnone"); !strings.Contains(s.Line, "encaplimit none") {
		t.Errorf("after a refused change: %q", s.Line)
	}
	writeFile(t, conf, "fou mode gre encap fou remote "+UnderB+" local "+UnderA+"\nsix "+strings.Join(six, " ")+"\n")
	if logged := hup(t, d, "reload refused"); !strings.Contains(logged, "CAP_NET_RAW") {
		t.Errorf("reload with an ip6gre encap fou tunnel needing CAP_NET_RAW: %s", logged)
	}
	if tp.hasLink(tp.A, "plain") || tp.hasLink(tp.A, "six") || !tp.hasLink(tp.A, "fou") || !tp.hasLink(tp.A, "sixnone") {
		t.Errorf("devices: %v", tp.links(tp.A))
	}
	d.Stop()
}

// TestFOUPortUnreachable: packets to a remote where nobody listens on the
// port are answered with ICMP Port Unreachable, which gretun hears on its
// UDP socket and counts (`-s tunnel show`).
func TestFOUPortUnreachable(t *testing.T) {
	tp := Pair(t)
	tp.Run(tp.A, "tb", "mode", "gre", "encap", "fou", "remote", UnderB, "local", UnderA)
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "tb")
	tp.Sh(tp.A, "ip", "link", "set", "dev", "tb", "up")
	tp.waitFor("port unreachable counted", func() bool {
		tp.Exec(tp.A, "ping", "-c", "1", "-W", "0.2", "203.0.113.1")
		return tp.Stats(tp.A, "tb").TxUnreachable >= 1
	})
	if out, _ := tp.Gretun(tp.A, "-s", "tunnel", "show", "tb"); !strings.Contains(out, "TX port unreachable: ") {
		t.Errorf("-s tunnel show does not show it:\n%s", out)
	}
}

// TestFOUKeepaliveKernelPeer is TestKeepaliveKernelPeer inside UDP: the
// far end is the Linux kernel's GRE-over-FOU tunnel in a qemu guest, which
// returns gretun's keepalives (whose inner packet is itself GRE-in-UDP,
// to gretun's port) by forwarding them; gretun's line goes down when the
// guest stops forwarding and comes back when it forwards again.
func TestFOUKeepaliveKernelPeer(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)
	guest := func(cmd string) {
		t.Helper()
		if out, err := g.Run(cmd); err != nil {
			t.Fatalf("guest: %s: %v: %s", cmd, err, out)
		}
	}
	guest("ip fou add port 4754 ipproto 47 && ip link add gt1 type gre remote " + UnderA + " local " + UnderB +
		" ttl 255 key 9 encap fou encap-sport auto encap-dport 4754 && ip link set gt1 up")
	guest("for d in all default eth0 gt1; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done")
	guest("echo 1 > /proc/sys/net/ipv4/ip_forward")

	tp := &Topology{Net: n, T: t, A: ns}
	p := tp.Run(ns, "gt1", "mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "255", "key", "9", "encap", "fou", "keepalive", kaPeriod, "5")
	tp.waitFor("10 keepalives returned by the kernel", func() bool {
		k := tp.keepalive(ns, "gt1")
		if k.State != "up" || !tp.carrier(ns, "gt1") {
			t.Fatalf("line went %s while the kernel peer forwards: %s", k.State, k.Summary)
		}
		return k.Received >= 10
	})
	guest("echo 0 > /proc/sys/net/ipv4/ip_forward")
	tp.waitFor("line down once the guest stops forwarding", func() bool { return !tp.carrier(ns, "gt1") })
	guest("echo 1 > /proc/sys/net/ipv4/ip_forward")
	tp.waitFor("line up once the guest forwards again", func() bool { return tp.carrier(ns, "gt1") })
	if k := tp.keepalive(ns, "gt1"); k.Rejected != 0 {
		t.Errorf("replies returned by the kernel were rejected: %s", k.Summary)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("gretun ended with %v: %s", err, p.Log())
	}
}

// TestFOUOverIPv6 is the classic scenario through GRE-in-UDP and IP in UDP
// over the IPv6 underlay (encap fou on ip6gre, ipip6 and ip6ip6): ping and
// a checksummed TCP transfer both ways, IPv4 and IPv6 inside as the mode
// carries them. With Linux's default encapsulation limit (sent as
// IPV6_DSTOPTS, which needs CAP_NET_RAW) gretun runs as root; with
// `encaplimit none` it runs without CAP_NET_RAW. The MTU leaves room for
// IPv6, the option, UDP and GRE, as the kernel's does.
func TestFOUOverIPv6(t *testing.T) {
	needSetpriv(t)
	for _, c := range []struct {
		name, a, b string
		noNetRaw   bool
		v4, v6     bool
		mtu        int
	}{
		{"ip6gre", "mode ip6gre key 42 csum seq encap fou", "mode ip6gre key 42 csum seq encap fou", false, true, true, 1500 - 40 - 8 - 8 - 16},
		{"ip6gre-nonetraw", "mode ip6gre encaplimit none encap fou", "mode ip6gre encaplimit none encap fou", true, true, true, 1500 - 40 - 8 - 4},
		{"ipip6", "mode ipip6 encap fou encap-dport 5555 fou-port 5556", "mode ipip6 encap fou encap-dport 5556 fou-port 5555", false, true, false, 1500 - 40 - 8 - 8},
		{"ip6ip6", "mode ip6ip6 encaplimit none encap fou encap-dport 5557", "mode ip6ip6 encaplimit none encap fou encap-dport 5557", true, false, true, 1500 - 40 - 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := Classic(t)
			tp.underlay6()
			start := tp.Run
			if c.noNetRaw {
				start = tp.startNoNetRaw
			}
			a := start(tp.A, "netb", append([]string{"remote", Under6B, "local", Under6A}, strings.Fields(c.a)...)...)
			b := start(tp.B, "neta", append([]string{"remote", Under6A, "local", Under6B}, strings.Fields(c.b)...)...)
			if s := tp.status(tp.A, "netb"); !strings.Contains(s.Line, " encap fou ") || s.MTU != c.mtu {
				t.Errorf("A shows %q, MTU %d, want %d", s.Line, s.MTU, c.mtu)
			}
			if c.v4 {
				tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
				tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
				tp.carryBothWays()
			}
			if c.v6 {
				tp.Sh(tp.A, "ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "netb", "nodad")
				tp.Sh(tp.B, "ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "neta", "nodad")
				tp.carry6BothWays()
			}
			sa, sb := tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
			if sa.RxErrors != 0 || sb.RxErrors != 0 || sa.RxPackets == 0 || sb.RxPackets == 0 {
				t.Errorf("counters: A %+v B %+v", sa, sb)
			}
			if !c.noNetRaw {
				// The encapsulation limit needs CAP_NET_RAW: said at once.
				r := tp.cmd(tp.A, noNetRaw, Bin(t, "gretun"), append([]string{"run", "lim", "remote", "2001:db8::9", "local", Under6A}, strings.Fields(c.a)...)...)
				wantError(t, "encaplimit over encap fou without CAP_NET_RAW", r, "CAP_NET_RAW", "encaplimit none")
			}
			for _, p := range []*Proc{a, b} {
				if err := p.Stop(); err != nil {
					t.Errorf("gretun run exited with %v: %s", err, p.Log())
				}
			}
		})
	}
}
