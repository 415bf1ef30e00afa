package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/rawsock"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

var (
	addr6A = netip.MustParseAddr("2001:db8::1")
	addr6B = netip.MustParseAddr("2001:db8::2")
)

// TestEngineIP6OnePerPair: like Linux, one ip6tnl tunnel (ip6ip6, ipip6 or any)
// per address pair whatever its mode, and one ip6gre per pair and key; a
// second is refused with a clear error, by add and by reload alike.
func TestEngineIP6OnePerPair(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	const pair = " remote 2001:db8::2 local 2001:db8::1"
	mustAdd(t, a, "t0", "mode ip6ip6"+pair)
	mustAdd(t, a, "g0", "mode ip6gre"+pair)
	mustAdd(t, a, "g1", "mode ip6gre key 1"+pair)
	mustAdd(t, a, "o0", "mode ipip6 remote 2001:db8::3 local 2001:db8::1")
	mustAdd(t, a, "a0", "mode any remote 2001:db8::4 local 2001:db8::1")
	for _, tc := range []struct{ name, words, want string }{
		{"t1", "mode ipip6" + pair, `tunnel "t0" already uses ip6ip6 remote 2001:db8::2 local 2001:db8::1: like Linux, one ip6ip6, ipip6 or any tunnel per address pair`},
		{"t3", "mode any" + pair, `tunnel "t0" already uses ip6ip6 remote 2001:db8::2 local 2001:db8::1: like Linux, one ip6ip6, ipip6 or any tunnel per address pair`},
		{"a1", "mode any remote 2001:db8::4 local 2001:db8::1", `tunnel "a0" already uses any`},
		{"a2", "mode ipip6 remote 2001:db8::4 local 2001:db8::1", `tunnel "a0" already uses any`},
		{"a3", "mode ip6ip6 remote 2001:db8::4 local 2001:db8::1", `tunnel "a0" already uses any`},
		{"t2", "mode ip6ip6" + pair, "same key"},
		{"g2", "mode ip6gre" + pair, `tunnel "g0" already uses ip6gre`},
		{"g3", "mode ip6gre key 1" + pair, "same key"},
		{"o1", "mode ip6ip6 remote 2001:db8::3 local 2001:db8::1", `tunnel "o0" already uses ipip6`},
	} {
		c, err := config.Parse(tc.name, strings.Fields(tc.words))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add %s %s: %v, want an error with %q", tc.name, tc.words, err, tc.want)
		}
	}
	if names := a.e.Names(); len(names) != 5 {
		t.Errorf("tunnels after refused adds: %v", names)
	}
	for _, second := range []string{"y mode ipip6" + pair, "y mode any" + pair} {
		var want []config.Tunnel
		for _, l := range []string{"x mode ip6ip6" + pair, second} {
			f := strings.Fields(l)
			c, err := config.Parse(f[0], f[1:])
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, c)
		}
		if err := a.e.Reload(want); err == nil || !strings.Contains(err.Error(), "same endpoints") {
			t.Errorf("reload with ip6ip6 and %s on one pair: %v", second, err)
		}
	}
}

// TestEngineIP6CarriesPackets: the IPv6 modes carry what they may between
// two engines over a fake IPv6 underlay, byte for byte, with Linux's
// defaults (encaplimit 4, hop limit 64) and without.
func TestEngineIP6CarriesPackets(t *testing.T) {
	in4 := udp4("198.51.100.1", "203.0.113.1", 200)
	in6 := udp6("2001:db8:1::1", "2001:db8:2::1", 248)
	for _, tc := range []struct {
		words string
		inner [][]byte
	}{
		{"mode ip6gre", [][]byte{in4, in6}},
		{"mode ip6gre key 7 csum seq encaplimit none", [][]byte{in4, in6}},
		{"mode ip6ip6", [][]byte{in6}},
		{"mode ipip6 hoplimit inherit tclass inherit", [][]byte{in4}},
		{"mode any", [][]byte{in4, in6}},
		{"mode any/ipv6 encaplimit none hoplimit inherit", [][]byte{in6, in4}},
	} {
		t.Run(tc.words, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addr6A, 8), newSide(t, w, addr6B, 8)
			mustAdd(t, a, "t0", tc.words+" remote 2001:db8::2 local 2001:db8::1")
			mustAdd(t, b, "t0", tc.words+" remote 2001:db8::1 local 2001:db8::2")
			for i := 0; i < 10; i++ {
				for _, pkt := range tc.inner {
					a.dev("t0").Inject(pkt)
					if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
						t.Fatalf("packet %d changed in transit:\n got %x\nwant %x", i, got, pkt)
					}
				}
			}
			n := uint64(10 * len(tc.inner))
			s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == n })
			if s.RxPackets != n || s.RxErrors != 0 {
				t.Errorf("B counters: %+v", s)
			}
		})
	}
}

// TestEngineIP6AnyNextHeaders: a mode any tunnel sends IPv4 inside as next
// header 4 and IPv6 as 41, after Linux's encapsulation limit, and takes
// both from a peer that sends them as ipip6 and ip6ip6 would (Linux's
// ip6tnl mode any), counting each as received.
func TestEngineIP6AnyNextHeaders(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	mustAdd(t, a, "t0", "mode any remote 2001:db8::2 local 2001:db8::1")
	if st, _ := a.e.Show("t0"); st[0].MTU != 1500-40-8 {
		t.Errorf("MTU %d, want %d as Linux's ip6tnl", st[0].MTU, 1500-40-8)
	}
	peer4, peer6 := w.Open(addr6B, header.ProtoIPIP), w.Open(addr6B, header.ProtoIPv6)
	in4 := udp4("198.51.100.1", "203.0.113.1", 100)
	in6 := udp6("2001:db8:1::1", "2001:db8:2::1", 100)
	for _, c := range []struct {
		inner []byte
		on    *tunneltest.Socket
		next  uint8
	}{{in4, peer4, header.ProtoIPIP}, {in6, peer6, header.ProtoIPv6}} {
		a.dev("t0").Inject(c.inner)
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		if _, err := c.on.ReadBatch(bufs, sizes); err != nil {
			t.Fatal(err)
		}
		out := bufs[0][:sizes[0]]
		if ip := header.IPv6(out); ip.NextHeader() != header.IPv6DestOpts || out[40] != c.next || out[44] != 4 || !bytes.Equal(out[48:], c.inner) {
			t.Errorf("IPv%d inside went out as % x, want next header %d after encapsulation limit 4", c.inner[0]>>4, out[:48], c.next)
		}
		// The far end sends it back, addresses turned round.
		back := append([]byte(nil), out...)
		copy(back[8:24], out[24:40])
		copy(back[24:40], out[8:24])
		if _, err := c.on.WriteBatch([][]byte{back}); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, a.dev("t0")); !bytes.Equal(got, c.inner) {
			t.Errorf("IPv%d inside, next header %d, received as %x", c.inner[0]>>4, c.next, got)
		}
	}
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.RxPackets == 2 }); s.RxPackets != 2 || s.TxPackets != 2 || s.RxErrors != 0 {
		t.Errorf("counters: %+v", s)
	}
}

// TestEngineIP6WrongInner: ip6ip6 refuses IPv4 and ipip6 IPv6 inside, as
// bad inner packets.
func TestEngineIP6WrongInner(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	mustAdd(t, a, "t6", "mode ip6ip6 remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, a, "t4", "mode ipip6 remote 2001:db8::3 local 2001:db8::1")
	a.dev("t6").Inject(udp4("198.51.100.1", "203.0.113.1", 10))
	a.dev("t4").Inject(udp6("2001:db8:1::1", "2001:db8:2::1", 58))
	for _, name := range []string{"t6", "t4"} {
		if s := waitStats(t, a, name, func(s tunnel.Stats) bool { return s.TxBadInner >= 1 }); s.TxBadInner != 1 {
			t.Errorf("%s: wrong inner version counted %d times as a bad inner packet", name, s.TxBadInner)
		}
	}
}

// TestEngineIP6KeepaliveReflection: keepalives on an ip6gre tunnel, their
// inner packet IPv6, with a key and checksums on A only; B reflects them
// and A stays up; when B goes away, A's carrier goes off.
func TestEngineIP6KeepaliveReflection(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addr6A, 8), newSide(t, w, addr6B, 8)
	mustAdd(t, a, "t0", "mode ip6gre key 5 csum remote 2001:db8::2 local 2001:db8::1 keepalive 50ms 5")
	mustAdd(t, b, "t0", "mode ip6gre key 5 csum remote 2001:db8::1 local 2001:db8::2")
	var st []tunnel.Status
	waitFor(t, "5 keepalive replies", func() bool {
		st, _ = a.e.Show("t0")
		ka := st[0].Keepalive
		return ka != nil && ka.Received >= 5
	})
	if ka := st[0].Keepalive; ka == nil || ka.State != "up" {
		t.Fatalf("keepalives with a reflecting peer: %+v", ka)
	}
	if stB, _ := b.e.Show("t0"); stB[0].Stats.Reflected < 5 || stB[0].Stats.RxErrors != 0 {
		t.Errorf("B reflected %d keepalives, drops %v", stB[0].Stats.Reflected, stB[0].Stats.Drops)
	}
	b.e.Del("t0")
	waitFor(t, "state down and carrier off after the peer went away", func() bool {
		st, _ = a.e.Show("t0")
		up, set := a.host.CarrierOf("t0")
		return st[0].Keepalive.State == "down" && set && !up
	})
}

// packetTooBig6 is an ICMPv6 Packet Too Big reporting mtu about a
// 1500-byte packet from 2001:db8::1 to dst of next header proto, after
// Linux's encapsulation limit option when limit, quoting tail after that.
func packetTooBig6(mtu uint32, dst string, proto uint8, limit bool, tail []byte) []byte {
	m := make([]byte, 8, 8+48+len(tail))
	m[0] = header.ICMPv6PacketTooBig
	binary.BigEndian.PutUint32(m[4:], mtu)
	ip := make([]byte, 40)
	next := proto
	if limit {
		next = header.IPv6DestOpts
	}
	header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLen: 1460, NextHeader: next, HopLimit: 64, Src: addr6A, Dst: netip.MustParseAddr(dst)})
	m = append(m, ip...)
	if limit {
		m = append(m, proto, 0, 4, 1, 4, 1, 1, 0)
	}
	return append(m, tail...)
}

// TestEngineICMP6LowersPathMTU: an ICMPv6 Packet Too Big about our outer
// packets lowers the path MTU of the tunnel it quotes (matched by next
// header after the encapsulation limit option, addresses and GRE key, as
// over IPv4), and one reporting less than IPv6's 1280 is ignored.
func TestEngineICMP6LowersPathMTU(t *testing.T) {
	feed := newICMPFeed()
	feed.parse = rawsock.ParseTooBig6
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8, func(env *tunnel.Env) {
		env.OpenICMP6 = func() (tunnel.ICMPSource, error) { return feed, nil }
	})
	mustAdd(t, a, "plain", "mode ip6gre remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, a, "k1", "mode ip6gre key 1 remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, a, "k2", "mode ip6gre key 2 remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, a, "nolim", "mode ip6ip6 encaplimit none remote 2001:db8::3 local 2001:db8::1")
	mustAdd(t, a, "six", "mode ip6ip6 remote 2001:db8::4 local 2001:db8::1")
	// Mode any is matched by either next header.
	mustAdd(t, a, "any4", "mode any remote 2001:db8::8 local 2001:db8::1")
	mustAdd(t, a, "any6", "mode any encaplimit none remote 2001:db8::9 local 2001:db8::1")
	// A multipoint hub: a report names the neighbour it is about.
	mustAdd(t, a, "hub", "mode ip6gre key 3 local 2001:db8::1")
	mustNeigh(t, a, "198.51.100.5 lladdr 2001:db8::5 dev hub")
	mustNeigh(t, a, "198.51.100.6 lladdr 2001:db8::6 dev hub")
	for _, m := range [][]byte{
		packetTooBig6(1350, "2001:db8::6", header.ProtoGRE, true, greQuote(header.GREFlagKey, 3)),
		packetTooBig6(1300, "2001:db8::7", header.ProtoGRE, true, greQuote(header.GREFlagKey, 3)), // no neighbour there
		packetTooBig6(1400, "2001:db8::2", header.ProtoGRE, true, greQuote(0, 0)),
		packetTooBig6(1300, "2001:db8::2", header.ProtoGRE, true, greQuote(header.GREFlagKey, 1)),
		packetTooBig6(1279, "2001:db8::2", header.ProtoGRE, true, greQuote(header.GREFlagKey, 2)), // below IPv6's minimum
		packetTooBig6(1300, "2001:db8::3", header.ProtoIPv6, false, nil),
		packetTooBig6(1400, "2001:db8::8", header.ProtoIPIP, true, nil),
		packetTooBig6(1350, "2001:db8::9", header.ProtoIPv6, false, nil),
		packetTooBig6(1300, "2001:db8::9", header.ProtoGRE, false, greQuote(0, 0)), // not a protocol it sends
		packetTooBig6(1280, "2001:db8::4", header.ProtoIPv6, true, nil),            // the last one
	} {
		feed.msgs <- m
	}
	want := map[string]int{"plain": 1400 - 52, "k1": 1300 - 56, "k2": 1500 - 56, "nolim": 1300 - 40, "six": 1280 - 48,
		"any4": 1400 - 48, "any6": 1350 - 40}
	waitFor(t, "the last report", func() bool {
		st, _ := a.e.Show("six")
		return st[0].PathMTU == want["six"]
	})
	st, _ := a.e.Show("")
	for _, s := range st {
		if s.Config.Name == "hub" {
			if ns := s.Neighbours; len(ns) != 2 || ns[0].PathMTU != 1500-56 || ns[1].PathMTU != 1350-56 {
				t.Errorf("hub: neighbours %+v, want path MTUs %d and %d", ns, 1500-56, 1350-56)
			}
			continue
		}
		if s.PathMTU != want[s.Config.Name] {
			t.Errorf("%s: path MTU %d, want %d", s.Config.Name, s.PathMTU, want[s.Config.Name])
		}
	}
}

// nestedIP6 is an ip6ip6 packet from 2001:db8:9::1 (a tunnel entry point
// behind the device) whose encapsulation limit is limit, carrying inner.
func nestedIP6(limit byte, inner []byte) []byte {
	p := make([]byte, 48, 48+len(inner))
	header.IPv6(p).Encode(&header.IPv6Fields{PayloadLen: uint16(8 + len(inner)), NextHeader: header.IPv6DestOpts, HopLimit: 64,
		Src: netip.MustParseAddr("2001:db8:9::1"), Dst: netip.MustParseAddr("2001:db8:9::2")})
	copy(p[40:], []byte{header.ProtoIPv6, 0, 4, 1, limit, 1, 1, 0})
	return append(p, inner...)
}

// TestEngineEncapLimit: a tunnel packet entering an IPv6 tunnel with an
// encapsulation limit of 0 is refused, counted and answered with an ICMPv6
// Parameter Problem pointing at the limit (RFC 2473 section 6.6); with a
// limit left it crosses unchanged.
func TestEngineEncapLimit(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addr6A, 8), newSide(t, w, addr6B, 8)
	mustAdd(t, a, "t0", "mode ip6ip6 remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, b, "t0", "mode ip6ip6 remote 2001:db8::1 local 2001:db8::2")
	inner := udp6("2001:db8:1::1", "2001:db8:2::1", 100)
	ok := nestedIP6(1, inner)
	a.dev("t0").Inject(ok)
	if got := receive(t, b.dev("t0")); !bytes.Equal(got, ok) {
		t.Fatalf("nested packet with limit 1 changed in transit:\n got %x\nwant %x", got, ok)
	}
	a.dev("t0").Inject(nestedIP6(0, inner))
	pp := receive(t, a.dev("t0"))
	m := header.ICMPv6(pp[header.IPv6HeaderLen:])
	if header.IPv6(pp).DstAddr() != netip.MustParseAddr("2001:db8:9::1") || m.Type() != header.ICMPv6ParamProblem || m.Code() != 0 || m.MTU() != 44 {
		t.Errorf("answer to a limit of 0: %x, want a Parameter Problem to 2001:db8:9::1 pointing at byte 44", pp)
	}
	s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxEncapLimit == 1 })
	if s.TxEncapLimit != 1 || s.TxICMP != 1 || s.TxPackets != 1 {
		t.Errorf("A counters: %+v", s)
	}
}

// TestEngineIP6Reload: a reload changes an ip6gre tunnel in place (new key,
// hop limit, encapsulation limit; same device) and recreates one whose mode
// changes from ip6ip6 to ipip6; it refuses a set with two ip6tnl tunnels on
// one address pair, changing nothing.
func TestEngineIP6Reload(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	parse := func(name, words string) config.Tunnel {
		c, err := config.Parse(name, strings.Fields(words))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const pair, pair2 = " remote 2001:db8::2 local 2001:db8::1", " remote 2001:db8::3 local 2001:db8::1"
	if err := a.e.Reload([]config.Tunnel{parse("g", "mode ip6gre key 1"+pair), parse("s", "mode ip6ip6"+pair2)}); err != nil {
		t.Fatal(err)
	}
	devG, devS := a.dev("g"), a.dev("s")
	if err := a.e.Reload([]config.Tunnel{parse("g", "mode ip6gre key 2 hoplimit 9 encaplimit none"+pair), parse("s", "mode ipip6"+pair2)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.e.Config("g"); c.IKey != 2 || c.TTL != 9 || c.EncapLimit != "none" || a.dev("g") != devG {
		t.Errorf("g after the reload: %+v (device kept: %v)", c, a.dev("g") == devG)
	}
	if st, _ := a.e.Show("g"); st[0].MTU != 1500-40-8 {
		t.Errorf("g's MTU %d with encaplimit none and a key, want %d", st[0].MTU, 1500-40-8)
	}
	if c, _ := a.e.Config("s"); c.Mode != config.ModeIPIP6 || a.dev("s") == devS {
		t.Errorf("s after the reload: %s, recreated %v", c.Mode, a.dev("s") != devS)
	}
	err := a.e.Reload([]config.Tunnel{parse("g", "mode ip6gre key 2"+pair), parse("s", "mode ipip6"+pair2), parse("t", "mode ip6ip6"+pair2)})
	if err == nil || !strings.Contains(err.Error(), "same endpoints") {
		t.Errorf("reload with ipip6 and ip6ip6 on one pair: %v", err)
	}
	if names := a.e.Names(); len(names) != 2 {
		t.Errorf("tunnels after a refused reload: %v", names)
	}
}

// TestEngineIP6AnyDeadLoop: a mode any tunnel knows its own outer packets
// by either next header: an IPv6 packet from its local to its remote
// address carrying 4 (IPv4 inside) or 41 read from its device is dropped
// as a dead loop, not encapsulated again.
func TestEngineIP6AnyDeadLoop(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addr6A, 8)
	mustAdd(t, a, "t0", "mode any encaplimit none remote 2001:db8::2 local 2001:db8::1")
	for _, next := range []uint8{header.ProtoIPIP, header.ProtoIPv6} {
		own := udp6("2001:db8::1", "2001:db8::2", 40)
		own[header.IPv6NextHeader] = next
		a.dev("t0").Inject(own)
	}
	a.dev("t0").Inject(udp6("2001:db8:1::1", "2001:db8:2::1", 40))
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxDeadLoop == 2 && s.TxPackets == 1 }); s.TxDeadLoop != 2 || s.TxPackets != 1 {
		t.Errorf("counters: %+v", s)
	}
}
