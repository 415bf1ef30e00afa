package decap_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/decap"
)

// linuxLimit is the destination options header Linux's ip6gre and ip6tnl
// put in every packet by default (init_tel_txopt): encapsulation limit 4,
// a PadN of one byte; next header GRE (47), IPv6 (41) or IPv4 (4).
func linuxLimit(next, limit byte) []byte { return []byte{next, 0, 0x04, 0x01, limit, 0x01, 0x01, 0x00} }

// ipv6Around is an IPv6 packet src -> dst, hop limit 255, next header GRE,
// carrying parts: an ip6gre keepalive probe's inner packet.
func ipv6Around(src, dst []byte, hop byte, parts ...[]byte) []byte {
	p := append([]byte{0x60, 0, 0, 0, 0, 0, 47, hop}, src...)
	p = append(p, dst...)
	for _, part := range parts {
		p = append(p, part...)
	}
	p[5] = byte(len(p) - 40)
	return p
}

// TestParse6AsLinuxSends: what the kernel's IPv6 tunnels send by default
// is accepted, a limit of 0 too (it binds a later entry point, not us: RFC
// 2473 section 4.1.1, and Linux accepts it); a GRE protocol type that is
// not the inner packet's version is dropped; an inner ip6gre keepalive
// probe from us back to the prober is to be reflected.
func TestParse6AsLinuxSends(t *testing.T) {
	probe := ipv6Around(local6.AsSlice(), remote6.AsSlice(), 255, greHdr(0, 0, 0, 0))
	for _, c := range []struct {
		name   string
		pkt    []byte
		want   decap.Reason
		kind   decap.Kind
		limit  uint8
		hasLim bool
	}{
		{"ip6gre, IPv4 inside", build6(60, 8, linuxLimit(47, 4), greHdr(0, 0x0800, 0, 0), in4), decap.OK, decap.Data, 4, true},
		{"ip6gre key csum seq, IPv6 inside", build6(60, 8, linuxLimit(47, 4), greHdr(0xb000, 0x86dd, 42, 7), in6), decap.OK, decap.Data, 4, true},
		{"ip6ip6", build6(60, -1, linuxLimit(41, 4), in6), decap.OK, decap.Data, 4, true},
		{"ipip6", build6(60, -1, linuxLimit(4, 4), in4), decap.OK, decap.Data, 4, true},
		{"encaplimit 0 is accepted", build6(60, -1, linuxLimit(41, 0), in6), decap.OK, decap.Data, 0, true},
		{"encaplimit none", build6(47, 0, greHdr(0, 0x86dd, 0, 0), in6), decap.OK, decap.Data, 0, false},
		{"GRE says IPv4, IPv6 inside", build6(60, 8, linuxLimit(47, 4), greHdr(0, 0x0800, 0, 0), in6), decap.InnerVersion, 0, 4, true},
		{"GRE says IPv6, IPv4 inside", build6(47, 0, greHdr(0, 0x86dd, 0, 0), in4), decap.InnerVersion, 0, 0, false},
		{"ipip6 carrying IPv6", build6(4, -1, in6), decap.InnerVersion, 0, 0, false},
		{"keepalive probe to reflect", build6(60, 8, linuxLimit(47, 4), greHdr(0, 0x86dd, 0, 0), probe), decap.OK, decap.Reflect, 4, true},
		{"IPv6 keepalive reply", build6(47, 0, greHdr(0, 0, 0, 0), make([]byte, 24)), decap.OK, decap.Keepalive, 0, false},
		{"probe the wrong way round is data", build6(47, 0, greHdr(0, 0x86dd, 0, 0),
			ipv6Around(remote6.AsSlice(), local6.AsSlice(), 255, greHdr(0, 0, 0, 0))), decap.OK, decap.Data, 0, false},
	} {
		var p decap.Packet
		r := decap.Parse6(c.pkt, &p)
		if r != c.want {
			t.Errorf("%s: Parse6 = %v, want %v", c.name, r, c.want)
			continue
		}
		if p.HasEncapLimit != c.hasLim || p.EncapLimit != c.limit {
			t.Errorf("%s: encapsulation limit %d (%v), want %d (%v)", c.name, p.EncapLimit, p.HasEncapLimit, c.limit, c.hasLim)
		}
		if r == decap.OK && p.Kind != c.kind {
			t.Errorf("%s: kind %v, want %v", c.name, p.Kind, c.kind)
		}
	}
}

// TestPrepareReflection6: a reflected ip6gre probe has its hop limit
// decremented, and one whose hop limit would expire here is refused.
func TestPrepareReflection6(t *testing.T) {
	for _, c := range []struct {
		hop  byte
		want decap.Reason
		left byte
	}{{255, decap.OK, 254}, {2, decap.OK, 1}, {1, decap.ReflectTTL, 1}, {0, decap.ReflectTTL, 0}} {
		p := ipv6Around(local6.AsSlice(), remote6.AsSlice(), c.hop, greHdr(0, 0, 0, 0))
		if r := decap.PrepareReflection(p); r != c.want || p[7] != c.left {
			t.Errorf("hop limit %d: %v, left %d; want %v, %d", c.hop, r, p[7], c.want, c.left)
		}
	}
}

// TestParse6ClearsPacket: Parse6 on a reused Packet gives what it gives on
// a fresh one, for packets it accepts and drops at every stage.
func TestParse6ClearsPacket(t *testing.T) {
	pkts := [][]byte{
		build6(60, 8, linuxLimit(47, 4), greHdr(0xb000, 0x86dd, 42, 7), in6),
		build6(60, -1, linuxLimit(41, 0), in6),
		build6(4, -1, in4),
		build6(47, 0, greHdr(0, 0, 0, 0)),
	}
	for _, c := range parse6Cases {
		pkts = append(pkts, c.pkt)
	}
	for _, pkt := range pkts {
		var fresh decap.Packet
		want := decap.Parse6(pkt, &fresh)
		dirty := dirtyPacket()
		if got := decap.Parse6(pkt, &dirty); got != want {
			t.Fatalf("% x: %v on a reused Packet, %v on a fresh one", pkt[:min(len(pkt), 24)], got, want)
		}
		if diff := cmp.Diff(fresh, dirty, addrCmp); diff != "" {
			t.Errorf("% x: reused Packet (-fresh +reused):\n%s", pkt[:min(len(pkt), 24)], diff)
		}
	}
}
