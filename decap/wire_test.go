package decap_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/decap"
)

// Outer IPv6 endpoints: packets come from the remote end to this host.
var (
	remote6 = netip.MustParseAddr("2001:db8::b")
	local6  = netip.MustParseAddr("2001:db8::a")
)

// build6 is an outer IPv6 packet remote6 -> local6 whose first header after
// the fixed one is next, carrying parts, with the payload length right and
// the GRE checksum filled in when the GRE header at greAt has C set (greAt
// < 0: no GRE header).
func build6(next byte, greAt int, parts ...[]byte) []byte {
	p := []byte{
		0x60, 0x20, 0x00, 0x00, // version 6, traffic class 0x02 (ECT(0)), flow label 0
		0, 0, next, 0x40, // payload length below, next header, hop limit 64
	}
	p = append(p, remote6.AsSlice()...)
	p = append(p, local6.AsSlice()...)
	for _, part := range parts {
		p = append(p, part...)
	}
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
	if greAt >= 0 && p[40+greAt]&0x80 != 0 {
		g := p[40+greAt:]
		g[4], g[5] = 0, 0
		binary.BigEndian.PutUint16(g[4:], rfc1071(g))
	}
	return p
}

// Extension headers, laid out field by field.
var (
	// hopByHop is hop-by-hop options with a PadN of 4, followed by destination options.
	hopByHop = []byte{60, 0, 0x01, 0x04, 0, 0, 0, 0}
	// destEncapLimit is destination options with a tunnel encapsulation
	// limit of 3 (RFC 2473), padded, followed by a fragment header.
	destEncapLimit = []byte{44, 0, 0x04, 0x01, 0x03, 0x01, 0x01, 0x00}
	// atomicFragment is a fragment header with offset 0 and no M: a whole
	// packet (RFC 6946), followed by GRE.
	atomicFragment = []byte{47, 0, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78}
)

func TestParse6Golden(t *testing.T) {
	for _, c := range []struct {
		name string
		pkt  []byte
		want decap.Packet
	}{
		{
			name: "ip6gre key",
			pkt: append([]byte{
				0x60, 0x20, 0x00, 0x00, // version 6, traffic class 0x02, flow label 0
				0x00, 0x24, 0x2f, 0x40, // payload length 36, next header GRE, hop limit 64
				0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, // source 2001:db8::b (remote)
				0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, // destination 2001:db8::a (this host)
				0x20, 0x00, 0x08, 0x00, // GRE: K; protocol IPv4
				0x00, 0x00, 0x00, 0x2a, // key 42
			}, in4...),
			want: decap.Packet{Proto: 47, Src: remote6, Dst: local6, TOS: 0x02, GREFlags: 0x2000, Key: 42,
				Type: 0x0800, Kind: decap.Data, Start: 48, End: 76},
		},
		{
			name: "ipv4 in ipv6",
			pkt:  build6(4, -1, in4),
			want: decap.Packet{Proto: 4, Src: remote6, Dst: local6, TOS: 0x02, Type: 0x0800, Kind: decap.Data, Start: 40, End: 68},
		},
		{
			name: "ipv6 in ipv6",
			pkt:  build6(41, -1, in6),
			want: decap.Packet{Proto: 41, Src: remote6, Dst: local6, TOS: 0x02, Type: 0x86dd, Kind: decap.Data, Start: 40, End: 88},
		},
		{
			name: "extension headers skipped, encapsulation limit recorded",
			pkt:  build6(0, 24, hopByHop, destEncapLimit, atomicFragment, greHdr(0x8000, 0x86dd, 0, 0), in6),
			want: decap.Packet{Proto: 47, Src: remote6, Dst: local6, TOS: 0x02, GREFlags: 0x8000, Type: 0x86dd,
				EncapLimit: 3, HasEncapLimit: true, Kind: decap.Data, Start: 72, End: 120},
		},
		{
			name: "routing header with no segments left, link-layer padding",
			pkt:  append(build6(43, 8, []byte{47, 0, 0, 0, 0, 0, 0, 0}, greHdr(0, 0, 0, 0), []byte{1, 2, 3}), 0, 0, 0, 0),
			want: decap.Packet{Proto: 47, Src: remote6, Dst: local6, TOS: 0x02, Kind: decap.Keepalive, Start: 52, End: 55},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if r := decap.Parse6(c.pkt, &p); r != decap.OK {
				t.Fatalf("Parse6: %v", r)
			}
			if diff := cmp.Diff(c.want, p, addrCmp); diff != "" {
				t.Errorf("Packet (-want +got):\n%s", diff)
			}
		})
	}
}

// parse6Cases has one or more cases per Reason Parse6 finds in the outer
// IPv6 header; the GRE and inner checks are Parse's.
var parse6Cases = []struct {
	name string
	pkt  []byte
	want decap.Reason
}{
	{"empty", nil, decap.Truncated},
	{"39 bytes", build6(47, 0, greHdr(0, 0x0800, 0, 0), in4)[:39], decap.Truncated},
	{"version 4", with(build6(47, 0, greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[0] = 0x40; return p }), decap.OuterVersion},
	{"payload length 0 (jumbogram)", with(build6(47, 0, greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[4], p[5] = 0, 0; return p }), decap.OuterLength},
	{"payload length beyond what was received", build6(47, 0, greHdr(0, 0x0800, 0, 0), in4)[:70], decap.OuterLength},
	{"fragment with an offset", build6(44, -1, []byte{47, 0, 0x00, 0x08, 0, 0, 0, 1}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterFragment},
	{"first fragment (M)", build6(44, -1, []byte{47, 0, 0x00, 0x01, 0, 0, 0, 1}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterFragment},
	{"routing header with segments left", build6(43, -1, []byte{47, 0, 0, 1, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterProtocol},
	{"esp", build6(50, -1, in4), decap.OuterProtocol},
	{"udp", build6(17, -1, in4), decap.OuterProtocol},
	{"no next header", build6(59, -1, in4), decap.OuterProtocol},
	{"extension header cut short", build6(60, -1, []byte{47, 0, 1, 4}), decap.OuterHeaderLen},
	{"extension header longer than the packet", build6(60, -1, []byte{47, 1, 1, 4, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0)), decap.OuterHeaderLen},
	{"hop-by-hop not first", build6(60, -1, []byte{0, 0, 1, 4, 0, 0, 0, 0}, hopByHop, []byte{47, 0, 1, 4, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterHeaderLen},
	{"destination option that says discard", build6(60, -1, []byte{47, 0, 0x9e, 0x02, 0, 0, 0x01, 0x00}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterHeaderLen},
	{"hop-by-hop option that says discard", build6(0, -1, []byte{47, 0, 0x5e, 0x04, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterHeaderLen},
	{"nine extension headers", build6(60, -1, bytesRepeat([]byte{60, 0, 1, 4, 0, 0, 0, 0}, 8), []byte{47, 0, 1, 4, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0), in4), decap.OuterHeaderLen},
	{"gre checksum wrong", with(build6(47, 0, greHdr(0x8000, 0x0800, 0, 0), in4), func(p []byte) []byte { p[44] ^= 1; return p }), decap.GREChecksum},
	{"gre ethernet truncated", build6(47, 0, greHdr(0, 0x6558, 0, 0), frame[:12]), decap.InnerTruncated},
	{"ipv6 in ipv6 carrying ipv4", build6(41, -1, in4), decap.InnerVersion},
}

func bytesRepeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}

func TestParse6Reasons(t *testing.T) {
	for _, c := range parse6Cases {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if got := decap.Parse6(c.pkt, &p); got != c.want {
				t.Errorf("Parse6 = %v, want %v", got, c.want)
			}
		})
	}
	// An unknown option whose action is "skip" is skipped.
	var p decap.Packet
	if r := decap.Parse6(build6(60, -1, []byte{47, 0, 0x1e, 0x02, 0, 0, 0x01, 0x00}, greHdr(0, 0x0800, 0, 0), in4), &p); r != decap.OK {
		t.Errorf("destination option to skip: %v", r)
	}
	// Eight extension headers are walked: the limit is not off by one.
	pkt := build6(60, -1, bytesRepeat([]byte{60, 0, 1, 4, 0, 0, 0, 0}, 7), []byte{47, 0, 1, 4, 0, 0, 0, 0}, greHdr(0, 0x0800, 0, 0), in4)
	if r := decap.Parse6(pkt, &p); r != decap.OK {
		t.Errorf("eight extension headers: %v", r)
	}
}

// TestEthernetCarried: GRE carrying Ethernet (0x6558) is data, its frame
// the whole rest of the packet, over either outer family and a UDP
// underlay alike; the engine takes it only on a gretap tunnel.
func TestEthernetCarried(t *testing.T) {
	check := func(name string, r decap.Reason, p *decap.Packet, pkt []byte) {
		t.Helper()
		if r != decap.OK || p.Type != 0x6558 || p.Kind != decap.Data || p.Key != 9 || !bytes.Equal(pkt[p.Start:p.End], frame) {
			t.Errorf("%s: %v, type %#04x, kind %v, key %d, inner %x", name, r, p.Type, p.Kind, p.Key, pkt[p.Start:p.End])
		}
	}
	var p decap.Packet
	pkt := build(47, greHdr(0x2000, 0x6558, 9, 0), frame)
	check("Parse", decap.Parse(pkt, &p), &p, pkt)
	pkt = build6(47, 0, greHdr(0x2000, 0x6558, 9, 0), frame)
	check("Parse6", decap.Parse6(pkt, &p), &p, pkt)
	pkt = greHdr(0x2000, 0x6558, 9, 0)
	pkt = append(pkt, frame...)
	check("ParseGRE", decap.ParseGRE(pkt, 0, &p), &p, pkt)
}

// TestParseGRE: the entry point of a UDP underlay starts at the GRE header
// after what its socket stripped, keeps the addresses it was given and
// says GRE.
func TestParseGRE(t *testing.T) {
	udp := []byte{0xc0, 0x00, 0x12, 0x92, 0x00, 0x28, 0x00, 0x00} // stands for whatever came before
	pkt := cat(udp, greHdr(0xa000, 0x0800, 42, 0), in4)
	binary.BigEndian.PutUint16(pkt[8+4:], rfc1071(pkt[8:]))
	p := decap.Packet{Src: remote6, Dst: local6, TOS: 0x01}
	if r := decap.ParseGRE(pkt, 8, &p); r != decap.OK {
		t.Fatalf("ParseGRE: %v", r)
	}
	want := decap.Packet{Proto: 47, Src: remote6, Dst: local6, TOS: 0x01, GREFlags: 0xa000, Key: 42, Type: 0x0800,
		Kind: decap.Data, Start: 20, End: 48}
	if diff := cmp.Diff(want, p, addrCmp); diff != "" {
		t.Errorf("Packet (-want +got):\n%s", diff)
	}
	for _, off := range []int{-1, len(pkt) - 3, len(pkt), len(pkt) + 1} {
		if r := decap.ParseGRE(pkt, off, &p); r != decap.GRETruncated {
			t.Errorf("offset %d: %v, want gre-truncated", off, r)
		}
	}
	keepalive := cat(udp, greHdr(0, 0, 0, 0), []byte{0xde, 0xad})
	if r := decap.ParseGRE(keepalive, 8, &p); r != decap.OK || p.Kind != decap.Keepalive || p.Start != 12 || p.End != 14 {
		t.Errorf("keepalive: %v %+v", r, p)
	}
}

// TestParse6Gopacket has gopacket serialise IPv6 outer packets for GRE with
// every flag, IPv4 in IPv6 and IPv6 in IPv6, and checks what Parse6 makes
// of them.
func TestParse6Gopacket(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, next := range []layers.IPProtocol{layers.IPProtocolGRE, layers.IPProtocolIPv4, layers.IPProtocolIPv6} {
		for flags := 0; flags < 8; flags++ {
			if next != layers.IPProtocolGRE && flags != 0 {
				continue
			}
			t.Run(fmt.Sprintf("%v-flags%d", next, flags), func(t *testing.T) {
				for i := 0; i < 20; i++ {
					v6 := next == layers.IPProtocolIPv6 || next == layers.IPProtocolGRE && i%2 == 1
					inner := randomInner(rng, v6)
					ip := &layers.IPv6{Version: 6, TrafficClass: byte(rng.Uint32()), FlowLabel: rng.Uint32() & 0xfffff,
						NextHeader: next, HopLimit: 1 + byte(rng.IntN(255)), SrcIP: net.IP(remote6.AsSlice()), DstIP: net.IP(local6.AsSlice())}
					gre := &layers.GRE{ChecksumPresent: flags&1 != 0, KeyPresent: flags&2 != 0, SeqPresent: flags&4 != 0,
						Key: rng.Uint32(), Seq: rng.Uint32(), Protocol: layers.EthernetTypeIPv4}
					if v6 {
						gre.Protocol = layers.EthernetTypeIPv6
					}
					ls := []gopacket.SerializableLayer{ip}
					hl := 40
					if next == layers.IPProtocolGRE {
						ls = append(ls, gre)
						hl += 4 + 4*(flags&1+flags>>1&1+flags>>2&1)
					}
					ls = append(ls, gopacket.Payload(inner))
					sb := gopacket.NewSerializeBuffer()
					if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
						t.Fatal(err)
					}
					var p decap.Packet
					if r := decap.Parse6(sb.Bytes(), &p); r != decap.OK {
						t.Fatalf("Parse6: %v", r)
					}
					want := decap.Packet{Proto: uint8(next), Src: remote6, Dst: local6, TOS: ip.TrafficClass, Type: uint16(gre.Protocol),
						Kind: decap.Data, Start: hl, End: hl + len(inner)}
					if next == layers.IPProtocolGRE {
						want.GREFlags = uint16(flags&1)<<15 | uint16(flags>>1&1)<<13 | uint16(flags>>2&1)<<12
						if gre.KeyPresent {
							want.Key = gre.Key
						}
						if gre.SeqPresent {
							want.Seq = gre.Seq
						}
					}
					if diff := cmp.Diff(want, p, addrCmp); diff != "" {
						t.Fatalf("Packet (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
}

// TestAllocsWire: Parse6 and ParseGRE allocate nothing either.
func TestAllocsWire(t *testing.T) {
	var p decap.Packet
	for _, c := range parse6Cases {
		if n := testing.AllocsPerRun(100, func() { decap.Parse6(c.pkt, &p) }); n != 0 {
			t.Errorf("Parse6 %s: %v allocations", c.name, n)
		}
	}
	pkt := build6(0, 24, hopByHop, destEncapLimit, atomicFragment, greHdr(0x8000, 0x86dd, 0, 0), in6)
	if n := testing.AllocsPerRun(100, func() { decap.Parse6(pkt, &p) }); n != 0 {
		t.Errorf("Parse6 with extension headers: %v allocations", n)
	}
	gre := cat(greHdr(0x2000, 0x0800, 42, 0), in4)
	if n := testing.AllocsPerRun(100, func() { decap.ParseGRE(gre, 0, &p) }); n != 0 {
		t.Errorf("ParseGRE: %v allocations", n)
	}
}

// TestParseClearsPacket: whatever a reused Packet held before, Parse
// leaves exactly what it leaves in a fresh one, for every accepted and
// dropped packet (Parse clears the fields one by one, to save writing
// the addresses twice: a field added to Packet and forgotten there fails
// here).
func TestParseClearsPacket(t *testing.T) {
	pkts := [][]byte{build(4, in4), build(47, greHdr(0xb000, 0x86dd, 42, 7), in6), build(47, greHdr(0, 0, 0, 0))}
	for _, c := range parseCases {
		pkts = append(pkts, c.pkt)
	}
	for _, pkt := range pkts {
		var fresh decap.Packet
		want := decap.Parse(pkt, &fresh)
		dirty := dirtyPacket()
		if got := decap.Parse(pkt, &dirty); got != want {
			t.Fatalf("% x: %v on a reused Packet, %v on a fresh one", pkt[:min(len(pkt), 24)], got, want)
		}
		if diff := cmp.Diff(fresh, dirty, addrCmp); diff != "" {
			t.Errorf("% x: reused Packet (-fresh +reused):\n%s", pkt[:min(len(pkt), 24)], diff)
		}
	}
}

// dirtyPacket is a Packet with every field set to something other than
// its zero value.
func dirtyPacket() decap.Packet {
	var p decap.Packet
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(0x5a)
		case reflect.Int:
			f.SetInt(99)
		default:
			f.Set(reflect.ValueOf(netip.MustParseAddr("2001:db8::99")))
		}
	}
	return p
}
