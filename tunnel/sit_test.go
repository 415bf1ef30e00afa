package tunnel_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// sitPair is A's sit tunnel to B (192.0.2.1 to 192.0.2.2).
const sitPair = " remote 192.0.2.2 local 192.0.2.1"

// TestEngineSITCarriesPackets: sit carries IPv6 between two engines over a
// fake IPv4 underlay byte for byte, straight over IP and inside UDP, with a
// device MTU of 1480 (1472 inside UDP) on a 1500-byte underlay, as Linux's
// sit.
func TestEngineSITCarriesPackets(t *testing.T) {
	for _, tc := range []struct {
		words string
		mtu   int
	}{
		{"mode sit ttl 255", 1480},
		{"mode sit tos inherit nopmtudisc", 1480},
		{"mode sit encap fou encap-dport 5556", 1472},
	} {
		t.Run(tc.words, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			mustAdd(t, a, "t0", tc.words+sitPair)
			mustAdd(t, b, "t0", tc.words+" remote 192.0.2.1 local 192.0.2.2")
			for i := range 10 {
				pkt := udp6("2001:db8:1::1", "2001:db8:2::1", 48+i*143)
				a.dev("t0").Inject(pkt)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
					t.Fatalf("packet %d changed in transit:\n got %x\nwant %x", i, got, pkt)
				}
			}
			s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == 10 })
			if s.RxPackets != 10 || s.RxErrors != 0 {
				t.Errorf("B counters: %+v", s)
			}
			if st, _ := a.e.Show("t0"); st[0].MTU != tc.mtu {
				t.Errorf("device MTU %d, want %d", st[0].MTU, tc.mtu)
			}
		})
	}
}

// TestEngineSITWrongInner: sit carries IPv6 only. An IPv4 packet on the
// device is dropped as a bad inner packet; IPv4 inside protocol 41 from the
// remote is dropped as inner-version, counted on the tunnel, never written
// to the device.
func TestEngineSITWrongInner(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode sit"+sitPair)
	remote := w.Open(addrB, header.ProtoIPv6)
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 10))
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxBadInner >= 1 }); s.TxBadInner != 1 || s.TxPackets != 0 {
		t.Errorf("IPv4 on a sit device: %+v, want one bad inner packet and nothing sent", s)
	}
	if p := readWire(remote, 100*time.Millisecond); p != nil {
		t.Errorf("sent %x", p)
	}

	remote = w.Open(addrB, header.ProtoIPv6)
	inner := udp4("203.0.113.1", "198.51.100.1", 10)
	outer := append(make([]byte, header.IPv4MinLen), inner...)
	header.IPv4(outer).Encode(&header.IPv4Fields{TotalLen: uint16(len(outer)), TTL: 64, Protocol: header.ProtoIPv6, Src: addrB, Dst: addrA})
	remote.WriteBatch([][]byte{outer})
	s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.RxErrors >= 1 })
	if s.Drops["inner-version"] != 1 || s.RxPackets != 0 {
		t.Errorf("IPv4 inside protocol 41: %+v, want one inner-version drop", s)
	}
	select {
	case p := <-a.dev("t0").Written:
		t.Errorf("wrote %x to the device", p)
	default:
	}
}

// TestEngineSITOnePerPair: as Linux, one sit tunnel per address pair;
// ipip is another protocol (and another kernel driver), so an ipip tunnel
// may share the pair, and each gets its own packets.
func TestEngineSITOnePerPair(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "s0", "mode sit"+sitPair)
	mustAdd(t, a, "i0", "mode ipip"+sitPair)
	mustAdd(t, b, "s0", "mode sit remote 192.0.2.1 local 192.0.2.2")
	mustAdd(t, b, "i0", "mode ipip remote 192.0.2.1 local 192.0.2.2")
	c, err := config.Parse("s1", strings.Fields("mode ipv6/ip ttl 64"+sitPair))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), `tunnel "s0" already uses sit remote 192.0.2.2 local 192.0.2.1`) {
		t.Errorf("a second sit tunnel on the pair: %v", err)
	}
	in6, in4 := udp6("2001:db8:1::1", "2001:db8:2::1", 100), udp4("198.51.100.1", "203.0.113.1", 100)
	a.dev("s0").Inject(in6)
	a.dev("i0").Inject(in4)
	if got := receive(t, b.dev("s0")); !bytes.Equal(got, in6) {
		t.Errorf("sit delivered %x", got)
	}
	if got := receive(t, b.dev("i0")); !bytes.Equal(got, in4) {
		t.Errorf("ipip delivered %x", got)
	}
}

// TestEngineSITPathMTU: an ICMP Fragmentation Needed quoting our protocol
// 41 packet lowers the tunnel's path MTU, and an inner IPv6 packet over it
// is answered with an ICMPv6 Packet Too Big. Below IPv6's 1280 the tunnel
// does what Linux's sit does: packets of up to 1280 bytes still go, their
// outer packets without DF, to be fragmented on the way (RFC 4213 section
// 3.2), and larger ones are told 1280.
func TestEngineSITPathMTU(t *testing.T) {
	feed := newICMPFeed()
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenICMP = func() (tunnel.ICMPSource, error) { return feed, nil }
	})
	mustAdd(t, a, "t0", "mode sit ttl 255"+sitPair)
	remote := w.Open(addrB, header.ProtoIPv6)
	local, far := addrA.As4(), addrB.As4()
	pathMTU := func(want int) {
		t.Helper()
		waitFor(t, "the path MTU", func() bool { st, _ := a.e.Show("t0"); return st[0].PathMTU == want })
	}
	// send injects an IPv6 packet of n bytes and returns the outer
	// packet the remote got.
	send := func(n int) []byte {
		t.Helper()
		a.dev("t0").Inject(udp6("2001:db8:1::1", "2001:db8:2::1", n))
		return readWire(remote, 5*time.Second)
	}
	// tooBig injects an IPv6 packet of n bytes and expects a Packet Too
	// Big reporting mtu on the device (and, as the counters say at the
	// end, nothing sent).
	tooBig := func(n int, mtu uint32) {
		t.Helper()
		a.dev("t0").Inject(udp6("2001:db8:1::1", "2001:db8:2::1", n))
		p := receive(t, a.dev("t0"))
		m := header.ICMPv6(p[header.IPv6HeaderLen:])
		if p[0]>>4 != 6 || m.Type() != header.ICMPv6PacketTooBig || m.MTU() != mtu {
			t.Errorf("answer %x, want an ICMPv6 Packet Too Big with MTU %d", p, mtu)
		}
	}

	feed.msgs <- fragNeeded(1400, local, far, header.ProtoIPv6, nil)
	pathMTU(1400 - 20)
	if p := send(1380); len(p) != 1400 || !header.IPv4(p).DF() || header.IPv4(p).TTL() != 255 {
		t.Errorf("1380 bytes over a 1400-byte path: outer %x, want 1400 bytes with DF and TTL 255", p)
	}
	tooBig(1381, 1380)

	feed.msgs <- fragNeeded(1000, local, far, header.ProtoIPv6, nil)
	pathMTU(1000 - 20)
	if p := send(1280); len(p) != 1300 || header.IPv4(p).DF() {
		t.Errorf("1280 bytes over a 1000-byte path: outer %x, want 1300 bytes without DF", p)
	}
	tooBig(1281, 1280)
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxICMP == 2 }); s.TxTooBig != 2 || s.TxPackets != 2 {
		t.Errorf("counters: %+v, want 2 too big answered with 2 ICMP errors, 2 packets sent", s)
	}
}

// TestEngineSITNarrowUnderlay: over an underlay narrower than 1300 bytes
// the device MTU stays at IPv6's 1280, as Linux's sit keeps it, and a
// packet of 1280 bytes crosses in outer fragments.
func TestEngineSITNarrowUnderlay(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	a.host.Underlay = 1280
	mustAdd(t, a, "t0", "mode sit"+sitPair)
	remote := w.Open(addrB, header.ProtoIPv6)
	if st, _ := a.e.Show("t0"); st[0].MTU != 1280 {
		t.Errorf("device MTU %d over a 1280-byte underlay, want 1280", st[0].MTU)
	}
	a.dev("t0").Inject(udp6("2001:db8:1::1", "2001:db8:2::1", 1280))
	first, second := header.IPv4(readWire(remote, 5*time.Second)), header.IPv4(readWire(remote, 5*time.Second))
	if len(first) > 1280 || !first.MoreFragments() || first.DF() || len(second) == 0 || second.FragmentOffset() != len(first)-header.IPv4MinLen ||
		len(first)+len(second)-2*header.IPv4MinLen != 1280 {
		t.Errorf("outer fragments %x and %x, want a 1300-byte packet in two fragments of at most 1280 bytes", first, second)
	}
}
