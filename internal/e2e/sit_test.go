package e2e

import (
	"strings"
	"testing"
)

// IPv6 networks behind the routers of the classic topology, for sit.
const (
	Lan6A    = "2001:db8:a::1" // router A on network A
	Lan6B    = "2001:db8:b::1"
	Host6AIP = "2001:db8:a::2"
	Host6BIP = "2001:db8:b::2"
)

// TestSIT is the classic scenario with IPv6 networks behind the routers
// and only IPv4 between them, what a tunnel broker's users run: sit (IPv6
// in IPv4, protocol 41) as `ip tunnel add … mode sit … ttl 255` makes it,
// and inside UDP (encap fou, run without CAP_NET_RAW). Host A and host B
// ping each other and move 4 MiB of TCP both ways; the routers show the
// tunnel as ip tunnel does, with sit's device MTU (1480, 1472 inside UDP).
// An IPv4 packet routed into the sit device is dropped and counted.
func TestSIT(t *testing.T) {
	for _, c := range []struct {
		name, a, b string
		noNetRaw   bool
		mtu        int
		show       string
	}{
		{"sit", "mode sit ttl 255", "mode sit ttl 255", false, 1480, "netb: ipv6/ip remote 192.0.2.2 local 192.0.2.1 ttl 255"},
		{"sit-fou", "mode sit encap fou encap-dport 5556 fou-port 5557", "mode sit encap fou encap-dport 5557 fou-port 5556", true, 1472,
			"netb: ipv6/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit encap fou encap-dport 5556 encap-sport auto fou-port 5557"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.noNetRaw {
				needSetpriv(t)
			}
			tp := Classic(t)
			run := tp.Run
			if c.noNetRaw {
				run = tp.startNoNetRaw
			}
			run(tp.A, "netb", append([]string{"remote", UnderB, "local", UnderA}, strings.Fields(c.a)...)...)
			run(tp.B, "neta", append([]string{"remote", UnderA, "local", UnderB}, strings.Fields(c.b)...)...)
			tp.lan6()
			for _, r := range []struct{ ns, dev, far string }{{tp.A, "netb", "2001:db8:b::/64"}, {tp.B, "neta", "2001:db8:a::/64"}} {
				tp.Sh(r.ns, "ip", "link", "set", "dev", r.dev, "up")
				tp.Sh(r.ns, "ip", "-6", "route", "add", r.far, "dev", r.dev)
			}
			tp.Ping(tp.HostA, Host6BIP)
			tp.Ping(tp.HostB, Host6AIP)
			tp.Transfer(tp.HostA, tp.HostB, Host6BIP, 4<<20)
			tp.Transfer(tp.HostB, tp.HostA, Host6AIP, 4<<20)
			if s := tp.status(tp.A, "netb"); s.Line != c.show || s.MTU != c.mtu {
				t.Errorf("A shows %q, MTU %d; want %q, MTU %d", s.Line, s.MTU, c.show, c.mtu)
			}
			sa, sb := tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
			if sa.RxPackets < 1000 || sb.RxPackets < 1000 || sa.RxErrors != 0 || sb.RxErrors != 0 || sa.TxErrors != 0 {
				t.Errorf("counters: A %+v B %+v", sa, sb)
			}

			// IPv4 into the sit device goes nowhere, counted.
			tp.Sh(tp.A, "ip", "route", "add", "203.0.113.0/24", "dev", "netb")
			if out, err := tp.Exec(tp.HostA, "ping", "-c", "2", "-i", "0.2", "-W", "1", HostBIP); err == nil {
				t.Errorf("IPv4 ping through sit answered:\n%s", out)
			}
			if s := tp.Stats(tp.A, "netb"); s.TxBadInner < 2 {
				t.Errorf("IPv4 into sit: %d bad inner packets counted, want 2: %+v", s.TxBadInner, s)
			}
		})
	}
}

// lan6 puts the IPv6 networks on the classic topology's LANs: each host
// routes through its router.
func (tp *Topology) lan6() {
	tp.T.Helper()
	tp.must(tp.Net.Addr(tp.HostA, "eth0", Host6AIP+"/64"))
	tp.must(tp.Net.Addr(tp.A, "lan", Lan6A+"/64"))
	tp.must(tp.Net.Addr(tp.B, "lan", Lan6B+"/64"))
	tp.must(tp.Net.Addr(tp.HostB, "eth0", Host6BIP+"/64"))
	tp.Sh(tp.HostA, "ip", "-6", "route", "add", "default", "via", Lan6A)
	tp.Sh(tp.HostB, "ip", "-6", "route", "add", "default", "via", Lan6B)
}
