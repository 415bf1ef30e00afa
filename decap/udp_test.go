package decap_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gretun/gretun/decap"
)

// udpHdr is a UDP header from port 49152 to port, its length covering
// the payload after it, checksum 0 (none).
func udpHdr(port uint16, payloadLen int) []byte {
	u := []byte{0xc0, 0x00, 0, 0, 0, 0, 0, 0} // source port 49152
	binary.BigEndian.PutUint16(u[2:], port)
	binary.BigEndian.PutUint16(u[4:], uint16(8+payloadLen))
	return u
}

// fou is an outer IPv4 packet to UDP port 4754 carrying the parts.
func fou(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return build(17, append([][]byte{udpHdr(4754, n)}, parts...)...)
}

// probeInUDP is the keepalive probe of a GRE-in-UDP tunnel at the remote:
// IPv4 local -> remote (our address back to the prober) carrying UDP to
// the prober's port and GRE protocol type 0.
func probeInUDP(ttl byte) []byte {
	g := append(greHdr(0, 0, 0, 0), "keepalive"...)
	p := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, ttl, 17, 0, 0}
	p = append(p, localIP[:]...)
	p = append(p, remoteIP[:]...)
	p = append(p, udpHdr(4754, len(g))...)
	p = append(p, g...)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	return fixIP(p)
}

// udpCase is a datagram for ParseUDP, the reason it should return and,
// on OK, the kind and the inner packet's start.
type udpCase struct {
	name  string
	proto uint8
	pkt   []byte
	want  decap.Reason
	kind  decap.Kind
	start int
}

// runUDPCases parses each case's datagram, from src to dst, and checks
// the reason and, on OK, the packet found.
func runUDPCases(t *testing.T, src, dst netip.Addr, cases []udpCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			got := decap.ParseUDP(c.pkt, c.proto, &p)
			if got != c.want {
				t.Fatalf("ParseUDP = %v, want %v", got, c.want)
			}
			if got != decap.OK {
				return
			}
			// The outer IP and GRE fields are the tests' of Parse and
			// Parse6; here: what UDP moves.
			want := p
			want.Src, want.Dst, want.Proto, want.Port, want.Kind, want.Seq = src, dst, c.proto, 4754, c.kind, 0
			want.Start, want.End = c.start, len(c.pkt)
			if diff := cmp.Diff(want, p, addrCmp); diff != "" {
				t.Errorf("packet (-want +got):\n%s", diff)
			}
		})
	}
}

var udpCases = []udpCase{
	{"gre-in-udp", 47, fou(greHdr(0x2000, 0x0800, 42, 0), in4), decap.OK, decap.Data, 20 + 8 + 8},
	{"gre-in-udp, ipv6 inside, checksum", 47, fou(withGRECsum(greHdr(0x8000, 0x86dd, 0, 0), in6)), decap.OK, decap.Data, 20 + 8 + 8},
	{"ipip-in-udp", 4, fou(in4), decap.OK, decap.Data, 20 + 8},
	{"keepalive probe inside udp", 47, fou(greHdr(0, 0x0800, 0, 0), probeInUDP(255)), decap.OK, decap.Reflect, 20 + 8 + 4},
	{"plain-gre probe inside udp: data", 47, fou(greHdr(0, 0x0800, 0, 0), build(47, greHdr(0, 0, 0, 0))), decap.OK, decap.Data, 20 + 8 + 4},
	{"not udp", 47, build(47, greHdr(0, 0x0800, 0, 0), in4), decap.OuterProtocol, 0, 0},
	{"udp header cut short", 47, build(17, []byte{0xc0, 0, 0x12, 0x92, 0}), decap.UDPLength, 0, 0},
	{"udp length beyond the packet", 47, with(fou(greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[24], p[25] = 0xff, 0xff; return p }), decap.UDPLength, 0, 0},
	{"udp length below its header", 47, with(fou(greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[24], p[25] = 0, 7; return p }), decap.UDPLength, 0, 0},
	{"gre version 1 inside udp", 47, fou(greHdr(0x0001, 0x880b, 0, 0), in4), decap.GREPPTP, 0, 0},
	{"gre cut short by the udp length", 47, with(fou(greHdr(0x2000, 0x0800, 42, 0), in4), func(p []byte) []byte { p[24], p[25] = 0, 14; return p }), decap.GRETruncated, 0, 0},
	{"ipv6 inside ipip-in-udp", 4, fou(in6), decap.InnerVersion, 0, 0},
	{"a protocol no fou port carries", 94, fou(in6), decap.OuterProtocol, 0, 0},
}

// withGRECsum fills in the checksum of a GRE header followed by payload.
func withGRECsum(g, payload []byte) []byte {
	b := append(append([]byte(nil), g...), payload...)
	binary.BigEndian.PutUint16(b[4:], rfc1071(b))
	return b
}

// TestParseUDP: GRE and IPIP inside UDP are found after the UDP header,
// with the UDP destination port in the packet, and hostile datagrams are
// dropped with a reason.
func TestParseUDP(t *testing.T) {
	runUDPCases(t, remoteAddr, localAddr, udpCases)
}

// TestParseUDPClearsPort: a packet parsed straight over IP after one over
// UDP has no port (it would find a UDP tunnel's key).
func TestParseUDPClearsPort(t *testing.T) {
	var p decap.Packet
	if r := decap.ParseUDP(fou(in4), 4, &p); r != decap.OK || p.Port != 4754 {
		t.Fatalf("ParseUDP: %v, port %d", r, p.Port)
	}
	if r := decap.Parse(build(4, in4), &p); r != decap.OK || p.Port != 0 {
		t.Errorf("Parse after ParseUDP: %v, port %d", r, p.Port)
	}
}

// fou6 is an outer IPv6 packet remote6 -> local6 to UDP port 4754
// carrying the parts, as udpsock rebuilds it (no extension headers).
func fou6(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return build6(17, -1, append([][]byte{udpHdr(4754, n)}, parts...)...)
}

// TestParseUDP6: GRE, IPIP and IPv6-in-IPv6 inside UDP over an outer IPv6
// header (encap fou on ip6gre, ipip6 and ip6ip6), an encapsulation limit
// option before UDP skipped, and hostile datagrams dropped with a reason.
func TestParseUDP6(t *testing.T) {
	runUDPCases(t, remote6, local6, []udpCase{
		{"gre-in-udp6", 47, fou6(greHdr(0x2000, 0x0800, 42, 0), in4), decap.OK, decap.Data, 40 + 8 + 8},
		{"gre-in-udp6, ipv6 inside", 47, fou6(greHdr(0, 0x86dd, 0, 0), in6), decap.OK, decap.Data, 40 + 8 + 4},
		{"ipip6-in-udp", 4, fou6(in4), decap.OK, decap.Data, 40 + 8},
		{"ip6ip6-in-udp", 41, fou6(in6), decap.OK, decap.Data, 40 + 8},
		{"encapsulation limit before udp", 41, build6(60, -1, linuxLimit(17, 4), udpHdr(4754, len(in6)), in6), decap.OK, decap.Data, 40 + 8 + 8},
		{"ipv4 inside ip6ip6-in-udp", 41, fou6(in4), decap.InnerVersion, 0, 0},
		{"not udp", 47, build6(47, 0, greHdr(0, 0x0800, 0, 0), in4), decap.OuterProtocol, 0, 0},
		{"udp length beyond the packet", 47, with(fou6(greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[44], p[45] = 0xff, 0xff; return p }), decap.UDPLength, 0, 0},
		{"payload length beyond the packet", 47, with(fou6(greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[4], p[5] = 0xff, 0xff; return p }), decap.OuterLength, 0, 0},
		{"cut inside the fixed header", 47, fou6(in4)[:30], decap.Truncated, 0, 0},
	})
}

// TestParseUDP6Reflect: over GRE-in-UDP on IPv6 a keepalive probe is an
// inner IPv6 packet from us back to the prober carrying UDP to its port and
// GRE protocol type 0, and is to be reflected; an inner plain-GRE probe
// (what the prober's UDP socket could not receive) and a UDP one over
// plain ip6gre are data.
func TestParseUDP6Reflect(t *testing.T) {
	g := append(greHdr(0, 0, 0, 0), "keepalive"...)
	probe := ipv6Around(local6.AsSlice(), remote6.AsSlice(), 255, udpHdr(4754, len(g)), g)
	probe[6] = 17
	plain := ipv6Around(local6.AsSlice(), remote6.AsSlice(), 255, greHdr(0, 0, 0, 0))
	for _, c := range []struct {
		name string
		pkt  []byte
		udp  bool
		want decap.Kind
	}{
		{"probe inside udp6", fou6(greHdr(0, 0x86dd, 0, 0), probe), true, decap.Reflect},
		{"plain-gre probe inside udp6", fou6(greHdr(0, 0x86dd, 0, 0), plain), true, decap.Data},
		{"udp probe over plain ip6gre", build6(47, 0, greHdr(0, 0x86dd, 0, 0), probe), false, decap.Data},
		{"udp probe cut short", fou6(greHdr(0, 0x86dd, 0, 0), with(append([]byte(nil), probe...), func(p []byte) []byte { p[44], p[45] = 0xff, 0xff; return p })), true, decap.Data},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			r := decap.Parse6(c.pkt, &p)
			if c.udp {
				r = decap.ParseUDP(c.pkt, 47, &p)
			}
			if r != decap.OK || p.Kind != c.want {
				t.Errorf("got %v, kind %v; want OK, %v", r, p.Kind, c.want)
			}
		})
	}
}
