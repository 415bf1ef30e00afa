package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
)

// The narrow-hop topology of the kernel selftest pmtu.sh
// (pmtu_ipv4_ipip_exception and friends), with gretun in place of the
// kernel's tunnel drivers on A and B:
//
//	A 192.0.2.1 ── 192.0.2.2 R1 192.0.2.65 ══ mtu 1400 ══ 192.0.2.66 B
//	  (192.0.2.0/26, mtu 1500)                (192.0.2.64/26)
//
// Inside the tunnel A is 198.51.100.1 and 2001:db8:1::1, B is 203.0.113.1
// and 2001:db8:1::2. A's own route to B says 1500, so only the underlay's
// ICMP Fragmentation Needed from R1 tells gretun that the path is narrower.
const (
	narrowA    = "192.0.2.1"
	narrowR1A  = "192.0.2.2"
	narrowR1B  = "192.0.2.65"
	narrowB    = "192.0.2.66"
	narrowHop  = 1400
	innerA4    = "198.51.100.1"
	innerB4    = "203.0.113.1"
	innerA6    = "2001:db8:1::1"
	innerB6    = "2001:db8:1::2"
	pmtuDevice = "tb" // the tunnel device on A; B's is "ta"
)

// narrowPath builds A — R1 — B with the 1400-byte hop between R1 and B.
func narrowPath(t *testing.T) *Topology {
	t.Helper()
	n := testnet.ForTest(t)
	tp := &Topology{Net: n, T: t}
	var r1 string
	var err error
	for _, p := range []struct {
		dst  *string
		name string
	}{{&tp.A, "a"}, {&r1, "r1"}, {&tp.B, "b"}} {
		if *p.dst, err = n.NS(p.name); err != nil {
			t.Fatal(err)
		}
	}
	tp.must(n.Veth(tp.A, "wan", r1, "wa"))
	tp.must(n.Veth(r1, "wb", tp.B, "wan"))
	tp.Sh(r1, "ip", "link", "set", "dev", "wb", "mtu", fmt.Sprint(narrowHop))
	tp.Sh(tp.B, "ip", "link", "set", "dev", "wan", "mtu", fmt.Sprint(narrowHop))
	tp.must(n.Addr(tp.A, "wan", narrowA+"/26"))
	tp.must(n.Addr(r1, "wa", narrowR1A+"/26"))
	tp.must(n.Addr(r1, "wb", narrowR1B+"/26"))
	tp.must(n.Addr(tp.B, "wan", narrowB+"/26"))
	tp.must(n.Forward(r1))
	tp.Sh(tp.A, "ip", "route", "add", "192.0.2.64/26", "via", narrowR1A)
	tp.Sh(tp.B, "ip", "route", "add", "192.0.2.0/26", "via", narrowR1B)
	return tp
}

// routeMTU returns the MTU `ip route get dst` reports in ns (a route
// exception's, or the route's own), 0 when it reports none.
func (tp *Topology) routeMTU(ns, dst string) int {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "route", "get", dst)
	m := regexp.MustCompile(`\bmtu (?:lock )?(\d+)`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// linkMTU returns the MTU of dev in ns.
func (tp *Topology) linkMTU(ns, dev string) int {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "-o", "link", "show", "dev", dev)
	m := regexp.MustCompile(`\bmtu (\d+)`).FindStringSubmatch(out)
	if m == nil {
		tp.T.Fatalf("no mtu in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pathMTU returns the path MTU gretun reports for tunnel name in ns.
func (tp *Topology) pathMTU(ns, name string) int {
	tp.T.Helper()
	for _, st := range tp.statuses(ns) {
		if st.Config.Name == name {
			return st.PathMTU
		}
	}
	tp.T.Fatalf("tunnel %s not shown in %s", name, ns)
	return 0
}

// TestMTUPathException is pmtu.sh's pmtu_ipv4_ipip_exception (and its
// GRE and IPv6 siblings) with gretun as the tunnel: a large DF ping from
// A into the tunnel makes R1 report the 1400-byte hop to gretun, gretun
// answers the next oversize ping with ICMP Fragmentation Needed (Packet
// Too Big for IPv6), and A's kernel then keeps a route exception whose
// MTU is the narrow hop less the tunnel's overhead.
func TestMTUPathException(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		words    []string // tunnel options besides mode, remote and local
		v6       bool
		overhead int
		routed   bool // ping from a host behind A rather than from A
	}{
		{"ipip", []string{"mode", "ipip"}, false, 20, false},
		{"gre", []string{"mode", "gre"}, false, 24, false},
		{"gre-key", []string{"mode", "gre", "key", "42"}, false, 28, false},
		{"gre-key-csum-seq", []string{"mode", "gre", "key", "42", "csum", "seq"}, false, 36, false},
		// Inside UDP (encap fou): 8 bytes more; the report reaches gretun
		// through the UDP socket's error queue (IP_RECVERR).
		{"gre-fou", []string{"mode", "gre", "key", "42", "encap", "fou"}, false, 36, false},
		{"ipip-fou", []string{"mode", "ipip", "encap", "fou", "encap-dport", "5555"}, false, 28, false},
		// A host behind A, whose SYNs announce the MSS of its own 1500-byte
		// link: clamp-mss brings them down to the learnt path MTU.
		{"gre-routed-clamp-mss", []string{"mode", "gre", "clamp-mss"}, false, 24, true},
		// IPv6 carries no DF of its own: pmtudisc sets it on the outer
		// header, as Linux tunnels do by default.
		{"gre-ipv6", []string{"mode", "gre", "pmtudisc"}, true, 24, false},
		{"gre-ipv6-routed", []string{"mode", "gre", "pmtudisc"}, true, 24, true},
		// sit: IPv6 in IPv4, DF set by default as on Linux's sit.
		{"sit", []string{"mode", "sit", "ttl", "255"}, true, 20, false},
		{"sit-routed", []string{"mode", "sit"}, true, 20, true},
		{"sit-fou", []string{"mode", "sit", "encap", "fou", "encap-dport", "5556"}, true, 28, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp := narrowPath(t)
			tp.Run(tp.A, pmtuDevice, append(c.words, "remote", narrowB, "local", narrowA)...)
			tp.Run(tp.B, "ta", append(c.words, "remote", narrowA, "local", narrowB)...)
			src, dst, ping, hdr := innerA4, innerB4, []string{"ping"}, 28
			if c.v6 {
				src, dst, ping, hdr = innerA6, innerB6, []string{"ping", "-6"}, 48
				tp.Sh(tp.A, "ip", "-6", "addr", "add", src+"/64", "dev", pmtuDevice, "nodad")
				tp.Sh(tp.B, "ip", "-6", "addr", "add", dst+"/64", "dev", "ta", "nodad")
			} else {
				tp.Sh(tp.A, "ip", "addr", "add", src, "peer", dst, "dev", pmtuDevice)
				tp.Sh(tp.B, "ip", "addr", "add", dst, "peer", src, "dev", "ta")
			}
			tp.Sh(tp.A, "ip", "link", "set", "dev", pmtuDevice, "up")
			tp.Sh(tp.B, "ip", "link", "set", "dev", "ta", "up")
			if got, want := tp.linkMTU(tp.A, pmtuDevice), 1500-c.overhead; got != want {
				t.Fatalf("device MTU %d before any ICMP, want %d (1500 less the overhead)", got, want)
			}
			from := tp.A
			if c.routed {
				from = tp.routedHost(t)
			}
			tp.Ping(from, dst, "-s", "100")

			want := narrowHop - c.overhead
			got := 0
			var out string
			for i := 0; i < 10 && got != want; i++ {
				out, _ = tp.Exec(from, append(ping, "-M", "do", "-s", "1400", "-c", "2", "-i", "0.1", "-W", "1", dst)...)
				got = tp.routeMTU(from, dst)
			}
			if got != want {
				t.Fatalf("ip route get %s reports mtu %d, want %d (%d less %d of overhead); last ping:\n%s\ngretun on A: %+v",
					dst, got, want, narrowHop, c.overhead, out, tp.Stats(tp.A, pmtuDevice))
			}
			if p := tp.pathMTU(tp.A, pmtuDevice); p != want {
				t.Errorf("gretun reports path_mtu %d, want %d", p, want)
			}
			if s := tp.Stats(tp.A, pmtuDevice); s.TxICMP == 0 || s.TxTooBig == 0 {
				t.Errorf("counters show no ICMP error sent: %+v", s)
			}
			// The largest DF packet the exception allows fits the narrow hop.
			tp.Ping(from, dst, "-M", "do", "-s", fmt.Sprint(want-hdr))

			if slices.Contains(c.words, "clamp-mss") {
				wait := capture(t, tp, tp.B, "ta", 1, "tcp[tcpflags] & tcp-syn != 0")
				tp.Transfer(from, tp.B, dst, 64<<10)
				if got := synMSS(t, wait()); got != want-40 {
					t.Errorf("the SYN reached B with MSS %d, want %d (the learnt tunnel path MTU less 40)", got, want-40)
				}
			}
		})
	}
}

// TestMTUPathExceptionLinkLocal is the IPv6 case of TestMTUPathException
// over tunnel devices with link-local addresses only, as on routed links:
// gretun once needed a global address on its device as the source of
// Packet Too Big, found none, and black-holed oversize packets. Senders
// both behind router A and on it learn the path MTU.
func TestMTUPathExceptionLinkLocal(t *testing.T) {
	t.Parallel()
	tp := narrowPath(t)
	words := []string{"mode", "gre", "pmtudisc"}
	tp.Run(tp.A, pmtuDevice, append(words, "remote", narrowB, "local", narrowA)...)
	tp.Run(tp.B, "ta", append(words, "remote", narrowA, "local", narrowB)...)
	tp.Sh(tp.A, "ip", "-6", "addr", "add", "fe80::a/64", "dev", pmtuDevice, "nodad")
	tp.Sh(tp.B, "ip", "-6", "addr", "add", "fe80::b/64", "dev", "ta", "nodad")
	tp.Sh(tp.A, "ip", "link", "set", "dev", pmtuDevice, "up")
	tp.Sh(tp.B, "ip", "link", "set", "dev", "ta", "up")
	h := tp.routedHost(t)
	dst := innerB6 // on B's loopback, routed into the tunnel by A
	tp.Sh(tp.B, "ip", "-6", "addr", "add", dst+"/128", "dev", "lo")
	tp.Sh(tp.A, "ip", "-6", "route", "add", dst+"/128", "dev", pmtuDevice)
	for _, dev := range []struct{ ns, name string }{{tp.A, pmtuDevice}, {tp.B, "ta"}} {
		if out := tp.Sh(dev.ns, "ip", "-6", "addr", "show", "dev", dev.name, "scope", "global"); strings.TrimSpace(out) != "" {
			t.Fatalf("%s has a global address:\n%s", dev.name, out)
		}
	}
	tp.Ping(h, dst, "-6", "-s", "100")

	want := narrowHop - 24
	for _, from := range []string{h, tp.A} {
		got := 0
		var out string
		for i := 0; i < 10 && got != want; i++ {
			out, _ = tp.Exec(from, "ping", "-6", "-M", "do", "-s", "1400", "-c", "2", "-i", "0.1", "-W", "1", dst)
			got = tp.routeMTU(from, dst)
		}
		if got != want {
			t.Fatalf("from %s: ip -6 route get %s reports mtu %d, want %d; last ping:\n%s\ngretun on A: %+v",
				from, dst, got, want, out, tp.Stats(tp.A, pmtuDevice))
		}
		// The largest packet the exception allows crosses the narrow hop.
		tp.Ping(from, dst, "-6", "-M", "do", "-s", fmt.Sprint(want-48))
	}
}

// routedHost puts host H behind A on the narrow-path topology, on
// 198.51.100.64/26 (A is .65, H .66) and 2001:db8:2::/64 (A is ::1, H
// ::2), routed through the tunnel both ways, and returns its namespace.
func (tp *Topology) routedHost(t *testing.T) string {
	t.Helper()
	h, err := tp.Net.NS("h")
	if err != nil {
		t.Fatal(err)
	}
	tp.must(tp.Net.Veth(h, "eth0", tp.A, "lan"))
	tp.must(tp.Net.Addr(h, "eth0", "198.51.100.66/26"))
	tp.must(tp.Net.Addr(tp.A, "lan", "198.51.100.65/26"))
	tp.must(tp.Net.Addr(h, "eth0", "2001:db8:2::2/64"))
	tp.must(tp.Net.Addr(tp.A, "lan", "2001:db8:2::1/64"))
	tp.must(tp.Net.Forward(tp.A))
	tp.Sh(h, "ip", "route", "add", "default", "via", "198.51.100.65")
	tp.Sh(h, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
	tp.Sh(tp.B, "ip", "route", "add", "198.51.100.64/26", "dev", "ta")
	tp.Sh(tp.B, "ip", "-6", "route", "add", "2001:db8:2::/64", "dev", "ta")
	return h
}

// narrowUnderlay is the classic topology with a 1400-byte underlay link
// between the routers.
func narrowUnderlay(t *testing.T) *Topology {
	t.Helper()
	tp := Classic(t)
	for _, ns := range []string{tp.A, tp.B} {
		tp.Sh(ns, "ip", "link", "set", "dev", "wan", "mtu", fmt.Sprint(narrowHop))
	}
	return tp
}

// TestMTURouters sends what does not fit a 1400-byte underlay from host A
// to host B through the routers' tunnel: UDP datagrams of 1400 bytes and
// more with DF clear, DF-clear pings of up to 8000 bytes, and a bulk TCP
// transfer. With the MTU derived from the underlay router A's kernel
// fragments the inner packets. With `mtu 1500` and the default pmtudisc
// (outer DF always set) gretun fragments the inner packets and host B
// reassembles them; with `nopmtudisc` it fragments the outer ones and
// router B's kernel reassembles them.
func TestMTURouters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		words []string
		mtu   int  // the tunnel device's
		outer bool // gretun fragments outer packets, not inner ones
	}{
		{"gre-key", []string{"mode", "gre", "key", "7"}, narrowHop - 28, false},
		{"gre-mtu-1500", []string{"mode", "gre", "mtu", "1500"}, 1500, false},
		{"gre-mtu-1500-nopmtudisc", []string{"mode", "gre", "mtu", "1500", "nopmtudisc"}, 1500, true},
		// IPIP carries none of the devices' IPv6 chatter, so the first
		// packet the tunnel ever sends is the 1400-byte datagram, in outer
		// fragments: they must share an IP identification the far end
		// can reassemble by (the kernel replaces a zero one per packet).
		{"ipip-mtu-1500-nopmtudisc", []string{"mode", "ipip", "mtu", "1500", "nopmtudisc"}, 1500, true},
		{"ipip-mtu-1500", []string{"mode", "ipip", "mtu", "1500"}, 1500, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp := narrowUnderlay(t)
			tp.Run(tp.A, "netb", append(c.words, "remote", UnderB, "local", UnderA)...)
			tp.Run(tp.B, "neta", append(c.words, "remote", UnderA, "local", UnderB)...)
			tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
			tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
			if got := tp.linkMTU(tp.A, "netb"); got != c.mtu {
				t.Fatalf("tunnel device MTU %d, want %d", got, c.mtu)
			}
			for _, size := range []int{1400, 1473, 4000, 8000} {
				sendUDP(t, tp, size)
			}
			for _, size := range []string{"1400", "1472", "4000", "8000"} {
				tp.Ping(tp.HostA, HostBIP, "-M", "dont", "-s", size)
			}
			tp.Transfer(tp.HostA, tp.HostB, HostBIP, 4<<20)
			tp.Transfer(tp.HostB, tp.HostA, HostAIP, 1<<20)
			sa, sb := tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
			if c.mtu > narrowHop && sa.TxFragmented == 0 {
				t.Errorf("tunnel MTU %d over a %d underlay, yet gretun sent no fragments: %+v", c.mtu, narrowHop, sa)
			}
			if c.mtu < narrowHop && sa.TxFragmented != 0 {
				t.Errorf("inner packets fit the underlay, yet gretun sent %d fragments", sa.TxFragmented)
			}
			// Outer fragments are reassembled by router B's kernel; inner
			// ones, each in a whole outer packet with DF, by host B.
			if got := tp.reassembled(tp.B) != 0; got != (c.outer && c.mtu > narrowHop) {
				t.Errorf("router B reassembled outer packets: %v, want %v", got, c.outer)
			}
			if sa.RxErrors != 0 || sb.RxErrors != 0 {
				t.Errorf("receive errors: A %v B %v", sa.Drops, sb.Drops)
			}
		})
	}
}

// reassembled returns the number of IPv4 packets ns reassembled from
// fragments (Ip.ReasmOKs in /proc/net/snmp).
func (tp *Topology) reassembled(ns string) uint64 {
	tp.T.Helper()
	m, err := kpeer.ParseSNMP(tp.Sh(ns, "cat", "/proc/net/snmp"))
	if err != nil {
		tp.T.Fatal(err)
	}
	return m["Ip.ReasmOKs"]
}

// sendUDP sends a UDP datagram of size payload bytes with DF clear from
// host A to host B and fails unless it arrives intact. It is sent once:
// nothing else is on these links, and a retry would hide a datagram that
// can never arrive (say, outer fragments that cannot be reassembled).
func sendUDP(t *testing.T, tp *Topology, size int) {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := testnet.InNS(tp.HostB, func() (err error) {
		// Port 0: parallel tests never compete for a fixed port.
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(HostBIP)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := testnet.InNS(tp.HostA, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(HostBIP), Port: rx.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			return err
		}
		raw, err := tx.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		})
		return errors.Join(err, serr)
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	want := make([]byte, size)
	rand.Read(want)
	if _, err := tx.Write(want); err != nil {
		t.Fatalf("sending a %d-byte UDP datagram: %v", size, err)
	}
	got := make([]byte, size+1)
	rx.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := rx.ReadFromUDP(got)
	if err != nil {
		t.Fatalf("a %d-byte UDP datagram with DF clear did not arrive: %v\nrouter A: %+v\nrouter B: %+v",
			size, err, tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta"))
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("a %d-byte UDP datagram arrived as %d bytes that differ", size, n)
	}
}

// capture runs tcpdump in ns on dev with filter until it has seen count
// packets, and returns a function that waits for it (5 s at most) and
// returns the packets it printed, one line each (-v adds continuation
// lines for the inner packets, which start with white space).
func capture(t *testing.T, tp *Topology, ns, dev string, count int, filter string) func() string {
	t.Helper()
	out := &testnet.Buffer{}
	args := []string{"tcpdump", "-n", "-v", "-l", "-t", "-i", dev, "-c", fmt.Sprint(count)}
	cmd, err := tp.Net.Start(ns, out, out, append(args, filter)...)
	if err != nil {
		t.Skipf("needs tcpdump: %v", err)
	}
	for i := 0; i < 500 && !strings.Contains(out.String(), "listening on"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "listening on") {
		t.Fatalf("tcpdump did not start: %s", out)
	}
	return func() string {
		t.Helper()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("tcpdump saw fewer than %d packets matching %q on %s:\n%s", count, filter, dev, out)
		}
		return out.String()
	}
}

// TestMTUClampMSS checks the MSS of the SYN that crosses a tunnel with
// `clamp-mss` on router A only: host B sees host A's SYN clamped to the
// tunnel MTU less 40 (or the configured value), and host A sees host B's
// SYN-ACK clamped the same way, as router A delivers it.
func TestMTUClampMSS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		words []string
		mss   int
	}{
		{"derived", []string{"clamp-mss"}, 1500 - 24 - 40},
		{"fixed", []string{"clamp-mss", "1200"}, 1200},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp := Classic(t)
			key := []string{}
			if c.words[0] == "key" {
				key = c.words[:2]
			}
			tp.Run(tp.A, "netb", append([]string{"mode", "gre", "remote", UnderB, "local", UnderA}, c.words...)...)
			tp.Run(tp.B, "neta", append([]string{"mode", "gre", "remote", UnderA, "local", UnderB}, key...)...)
			tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
			tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
			tp.Ping(tp.HostA, HostBIP)
			const syn = "tcp port 5201 and tcp[tcpflags] & tcp-syn != 0"
			atB := capture(t, tp, tp.HostB, "eth0", 1, "src host "+HostAIP+" and "+syn)
			atA := capture(t, tp, tp.HostA, "eth0", 1, "src host "+HostBIP+" and "+syn)
			tp.Transfer(tp.HostA, tp.HostB, HostBIP, 64<<10)
			for where, out := range map[string]string{"host A's SYN at host B": atB(), "host B's SYN-ACK at host A": atA()} {
				if got := synMSS(t, out); got != c.mss {
					t.Errorf("%s announces MSS %d, want %d:\n%s", where, got, c.mss, out)
				}
			}
			if s := tp.Stats(tp.A, "netb"); s.TxMSSClamped < 2 {
				t.Errorf("router A counted %d clamped SYNs, want 2 (one each way)", s.TxMSSClamped)
			}
		})
	}
}

// synMSS returns the MSS option of the SYN tcpdump -v printed in out, 0
// (and an error) when it shows none.
func synMSS(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`\bmss (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("no SYN with an MSS option captured:\n%s", out)
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestMTUUnderlayLinkChange lowers and raises the MTU of router A's
// underlay link: a tunnel whose MTU follows the underlay follows it
// (underlay less the overhead) within moments, one with `mtu` stays put.
func TestMTUUnderlayLinkChange(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	tp.Daemon(tp.A)
	tp.add(tp.A, "follow", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1")
	tp.add(tp.A, "fixed", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "2", "mtu", "1300")
	tp.add(tp.A, "ipip", "mode", "ipip", "remote", UnderB, "local", UnderA)
	for _, under := range []int{1500, 1400, 1280, 9000, 1500} {
		tp.Sh(tp.A, "ip", "link", "set", "dev", "wan", "mtu", fmt.Sprint(under))
		changed := time.Now()
		want := map[string]int{"follow": under - 28, "fixed": 1300, "ipip": under - 20}
		got := map[string]int{}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for dev := range want {
				got[dev] = tp.linkMTU(tp.A, dev)
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("underlay MTU %d: device MTUs %v, want %v", under, got, want)
		}
		t.Logf("%d settled after %v", under, time.Since(changed))
		if p := tp.pathMTU(tp.A, "follow"); p != under-28 {
			t.Errorf("underlay MTU %d: gretun reports path_mtu %d, want %d", under, p, under-28)
		}
	}
}

// TestMTUDFPolicy looks at the outer DF bit on the underlay, as the
// kernel's ip_tunnel_xmit sets it: `pmtudisc`, the default, on every
// packet, `nopmtudisc` copied from the inner packet, `ignore-df` on none.
// With `ignore-df` a DF packet too big for the underlay is fragmented
// outside instead of refused.
func TestMTUDFPolicy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		policy string
		df     map[string]bool // inner DF (ping -M do or dont) → outer DF
	}{
		{"pmtudisc", map[string]bool{"do": true, "dont": true}},
		{"nopmtudisc", map[string]bool{"do": true, "dont": false}},
		{"ignore-df", map[string]bool{"do": false, "dont": false}},
		{"", map[string]bool{"do": true, "dont": true}}, // pmtudisc
	} {
		name := c.policy
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tp := Classic(t)
			words := []string{"mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "1500"}
			if c.policy != "" {
				words = append(words, c.policy)
			}
			tp.Run(tp.A, "netb", words...)
			tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB)
			tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
			tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
			for _, inner := range []string{"do", "dont"} {
				// GRE carrying IPv4 (the pings; not the devices' IPv6 chatter).
				wait := capture(t, tp, tp.B, "wan", 3, "src host "+UnderA+" and ip proto 47 and ip[22:2] = 0x0800")
				tp.Ping(tp.HostA, HostBIP, "-M", inner, "-s", "100")
				checkDF(t, wait(), 3, c.df[inner])
			}
			// An inner DF packet that fits the device (MTU 1500) but not,
			// encapsulated, the underlay: refused with ICMP unless
			// ignore-df, which fragments the outer packet.
			before := tp.Stats(tp.A, "netb")
			out, err := tp.Exec(tp.HostA, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1472", HostBIP)
			after := tp.Stats(tp.A, "netb")
			crossed := err == nil && strings.Contains(out, " 0% packet loss")
			if c.policy == "ignore-df" {
				if !crossed || after.TxFragmented-before.TxFragmented < 2 {
					t.Errorf("ignore-df: 1500-byte DF packets did not cross as outer fragments (%d sent):\n%s",
						after.TxFragmented-before.TxFragmented, out)
				}
			} else if crossed || after.TxTooBig == before.TxTooBig {
				t.Errorf("1500-byte DF packets over a 1500-byte underlay: crossed %v, counted too big %d times:\n%s",
					crossed, after.TxTooBig-before.TxTooBig, out)
			}
		})
	}
}

// checkDF checks that tcpdump -v printed count outer packets, all with
// DF set (df) or all without.
func checkDF(t *testing.T, out string, count int, df bool) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "IP (") {
			continue // tcpdump's own messages and the inner packets
		}
		n++
		m := regexp.MustCompile(`flags \[([^\]]*)\]`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no IP flags in %q", line)
		}
		if got := strings.Contains(m[1], "DF"); got != df {
			t.Errorf("outer packet has flags [%s], want DF %v: %s", m[1], df, line)
		}
	}
	if n != count {
		t.Errorf("read %d outer packets from tcpdump, want %d:\n%s", n, count, out)
	}
}

// TestMTUTinyRoute: a route toward the remote with `mtu lock 28`, below
// IPv4's minimum of 68, once made gretun divide by zero on the first packet
// and die with every tunnel. Such an MTU is unusable: packets are dropped
// and counted, and gretun keeps serving.
func TestMTUTinyRoute(t *testing.T) {
	t.Parallel()
	for _, df := range []string{"pmtudisc", "nopmtudisc"} {
		t.Run(df, func(t *testing.T) {
			t.Parallel()
			tp := Classic(t)
			tp.Sh(tp.A, "ip", "route", "add", UnderB+"/32", "dev", "wan", "mtu", "lock", "28")
			tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "1400", df)
			tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
			tp.Exec(tp.HostA, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "dont", "-s", "100", HostBIP)
			// gretun answers: it is still running.
			if s := tp.Stats(tp.A, "netb"); s.TxTooBig == 0 || s.TxPackets != 0 {
				t.Errorf("tx_too_big %d, tx_packets %d; want the pings dropped as too big", s.TxTooBig, s.TxPackets)
			}
		})
	}
}
