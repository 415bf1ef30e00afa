package pmtu

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// A 1500-byte IPv4 UDP packet with DF, 198.51.100.10 → 203.0.113.20,
// meets a tunnel whose path MTU is 1476 (GRE over a 1500-byte underlay).
func TestTooBig4Golden(t *testing.T) {
	inner := make([]byte, 1500)
	copy(inner, []byte{
		0x45, 0x00, 0x05, 0xdc, // version 4, IHL 5, TOS 0, total length 1500
		0x12, 0x34, 0x40, 0x00, // ID 0x1234, flags DF, offset 0
		0x40, 0x11, 0xbc, 0x8a, // TTL 64, protocol UDP, header checksum
		198, 51, 100, 10, // source
		203, 0, 113, 20, // destination
		0x9c, 0x40, 0x13, 0x89, // UDP ports 40000 → 5001
		0x05, 0xc8, 0xab, 0xcd, // UDP length 1480, checksum (not checked)
	})
	want := []byte{
		// IPv4 header of the error, from our tunnel endpoint to the sender.
		0x45, 0xc0, 0x00, 0x38, // version 4, IHL 5, TOS 0xc0 (internetwork control), total length 56
		0x00, 0x00, 0x40, 0x00, // ID 0, flags DF (atomic datagram), offset 0
		0x40, 0x01, 0x4d, 0xc6, // TTL 64, protocol ICMP, header checksum
		192, 0, 2, 1, // source: tunnel4
		198, 51, 100, 10, // destination: the inner sender
		// ICMP Destination Unreachable, Fragmentation Needed (RFC 1191 §4).
		0x03, 0x04, 0x95, 0xd8, // type 3, code 4, checksum
		0x00, 0x00, 0x05, 0xc4, // unused, Next-Hop MTU 1476
		// Quote: the inner IPv4 header and the first 8 bytes of its payload.
		0x45, 0x00, 0x05, 0xdc,
		0x12, 0x34, 0x40, 0x00,
		0x40, 0x11, 0xbc, 0x8a,
		198, 51, 100, 10,
		203, 0, 113, 20,
		0x9c, 0x40, 0x13, 0x89,
		0x05, 0xc8, 0xab, 0xcd,
	}
	dst := make([]byte, MaxLen4)
	n, err := TooBig(dst, inner, 1476, tunnel4)
	if err != nil {
		t.Fatalf("TooBig: %v", err)
	}
	if diff := cmp.Diff(want, dst[:n]); diff != "" {
		t.Errorf("error packet (-want +got):\n%s", diff)
	}
	checkFragNeeded(t, dst[:n], inner, 1476, tunnel4)
}

// A 1492-byte IPv6 UDP packet, 2001:db8:1::10 → 2001:db8:2::20, meets a
// tunnel of MTU 1400. The error is 1280 bytes: 48 of headers and the
// first 1232 bytes of the packet.
func TestTooBig6Golden(t *testing.T) {
	inner := append([]byte{
		0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
		0x05, 0xac, 0x11, 0x40, // payload length 1452, next header UDP, hop limit 64
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // source 2001:db8:1::10
		0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, // destination 2001:db8:2::20
		0x9c, 0x40, 0x13, 0x89, // UDP ports 40000 → 5001
		0x05, 0xac, 0xab, 0xcd, // UDP length 1452, checksum (not checked)
	}, fill(1444)...)
	want := append([]byte{
		// IPv6 header of the error, from our tunnel address to the sender.
		0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
		0x04, 0xd8, 0x3a, 0x40, // payload length 1240, next header ICMPv6, hop limit 64
		0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // source 2001:db8:ff::1
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // destination 2001:db8:1::10
		// ICMPv6 Packet Too Big (RFC 4443 §3.2).
		0x02, 0x00, 0x99, 0x05, // type 2, code 0, checksum
		0x00, 0x00, 0x05, 0x78, // MTU 1400
	}, inner[:1232]...) // as much of the packet as fits in 1280 bytes
	dst := make([]byte, MaxLen6)
	n, err := TooBig(dst, inner, 1400, tunnel6)
	if err != nil {
		t.Fatalf("TooBig: %v", err)
	}
	if diff := cmp.Diff(want, dst[:n]); diff != "" {
		t.Errorf("error packet (-want +got):\n%s", diff)
	}
	checkPacketTooBig(t, dst[:n], inner, 1400, tunnel6)
}

// checkFragNeeded decodes pkt with gopacket, compares every field with
// what inner, mtu and src call for, and verifies both checksums by
// having gopacket recompute them.
func checkFragNeeded(t *testing.T, pkt, inner []byte, mtu int, src netip.Addr) {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	if e := p.ErrorLayer(); e != nil {
		t.Fatalf("gopacket: %v", e.Error())
	}
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || icmp == nil {
		t.Fatalf("gopacket found no IPv4/ICMPv4 in %x", pkt)
	}
	innerIHL := int(inner[0]&0x0f) * 4
	quote := inner[:min(innerIHL+8, len(inner))]
	got := fragNeeded{ip.SrcIP.String(), ip.DstIP.String(), uint8(ip.Protocol), ip.TTL, ip.Flags,
		int(ip.Length), icmp.TypeCode.Type(), icmp.TypeCode.Code(), icmp.Seq, icmp.Id, icmp.Payload}
	want := fragNeeded{src.String(), netip.AddrFrom4([4]byte(inner[12:16])).String(), 1, 64, layers.IPv4DontFragment,
		len(pkt), 3, 4, uint16(mtu), 0, quote}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded error (-want +got):\n%s", diff)
	}
	// Recompute both checksums with gopacket and compare.
	again := serializeNoFix(t, ip, icmp, gopacket.Payload(icmp.Payload))
	if !bytes.Equal(again, pkt) {
		t.Errorf("gopacket's checksums differ:\n got  %x\n want %x", pkt, again)
	}
	if c := rfc1071(pkt[:20]); c != 0 {
		t.Errorf("IPv4 header does not verify: %#04x", c)
	}
	if c := rfc1071(pkt[20:]); c != 0 {
		t.Errorf("ICMP message does not verify: %#04x", c)
	}
}

type fragNeeded struct {
	Src, Dst   string
	Proto, TTL uint8
	Flags      layers.IPv4Flag
	Length     int
	Type, Code uint8
	MTU        uint16
	Unused     uint16
	Quote      []byte
}

func checkPacketTooBig(t *testing.T, pkt, inner []byte, mtu int, src netip.Addr) {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	if e := p.ErrorLayer(); e != nil {
		t.Fatalf("gopacket: %v", e.Error())
	}
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip == nil || icmp == nil || len(icmp.Payload) < 4 {
		t.Fatalf("gopacket found no IPv6/ICMPv6 in %x", pkt)
	}
	want := packetTooBig{src.String(), netip.AddrFrom16([16]byte(inner[8:24])).String(), 58, 64,
		len(pkt) - 40, 2, 0, uint32(max(mtu, 1280)), inner[:min(len(inner), 1232)]}
	got := packetTooBig{ip.SrcIP.String(), ip.DstIP.String(), uint8(ip.NextHeader), ip.HopLimit,
		int(ip.Length), icmp.TypeCode.Type(), icmp.TypeCode.Code(), be32(icmp.Payload), icmp.Payload[4:]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded error (-want +got):\n%s", diff)
	}
	if len(pkt) > 1280 {
		t.Errorf("error is %d bytes, more than the IPv6 minimum MTU", len(pkt))
	}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	again := serializeNoFix(t, ip, icmp, gopacket.Payload(icmp.Payload))
	if !bytes.Equal(again, pkt) {
		t.Errorf("gopacket's checksum differs:\n got  %x\n want %x", pkt[:48], again[:48])
	}
	if c := rfc1071(pseudo(src, netip.AddrFrom16([16]byte(inner[8:24])), 58, len(pkt)-40), pkt[40:]); c != 0 {
		t.Errorf("ICMPv6 message does not verify: %#04x", c)
	}
}

type packetTooBig struct {
	Src, Dst       string
	Next, HopLimit uint8
	PayloadLength  int
	Type, Code     uint8
	MTU            uint32
	Quote          []byte
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// serializeNoFix re-serializes decoded layers recomputing checksums but
// keeping every other field as decoded.
func serializeNoFix(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

// Every kind of inner packet that must be answered, decoded and checked.
func TestTooBigAnswers(t *testing.T) {
	withOptions := func() []byte {
		ip := ip4(host4A, host4B, layers.IPProtocolUDP, true)
		// Record Route with room for 9 addresses: a 60-byte header.
		ip.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 39, OptionData: append([]byte{4}, make([]byte, 36)...)}}
		u := &layers.UDP{SrcPort: 1, DstPort: 2}
		u.SetNetworkLayerForChecksum(ip)
		return serialize(t, ip, u, fill(1400))
	}
	echo4 := func(n int) []byte {
		return serialize(t, ip4(host4A, host4B, layers.IPProtocolICMPv4, true),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, fill(n-28))
	}
	echo6 := func(n int) []byte {
		ip := ip6(host6A, host6B, layers.IPProtocolICMPv6)
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
		icmp.SetNetworkLayerForChecksum(ip)
		return serialize(t, ip, icmp, fill(n-44))
	}
	firstFrag6 := func() []byte {
		ip := ip6(host6A, host6B, layers.IPProtocolIPv6Fragment)
		return serialize(t, ip, frag6Header(layers.IPProtocolUDP, 0, true), fill(1452))
	}
	multicastDst6 := func() []byte {
		ip := ip6(host6A, netip.MustParseAddr("ff0e::1"), layers.IPProtocolUDP)
		return serialize(t, ip, fill(1460))
	}
	for _, tc := range []struct {
		name  string
		inner []byte
		mtu   int
		src   netip.Addr
	}{
		{"udp4", udp4(t, 1500, true), 1476, tunnel4},
		{"one byte over", udp4(t, 1477, true), 1476, tunnel4},
		{"ipv4 options", withOptions(), 1400, tunnel4},
		{"echo request", echo4(1500), 1480, tunnel4},
		{"mtu below 68 says 68", udp4(t, 100, true), 20, tunnel4},
		{"mapped source", udp4(t, 1500, true), 1476, netip.AddrFrom16(tunnel4.As16())},
		{"trailing bytes after total length", append(udp4(t, 1500, true), 1, 2, 3), 1476, tunnel4},
		{"udp6", udp6(t, 1500), 1476, tunnel6},
		{"short udp6 quoted whole", udp6(t, 1300), 1290, tunnel6},
		{"echo6 request", echo6(1500), 1476, tunnel6},
		{"first fragment6", firstFrag6(), 1400, tunnel6},
		{"multicast destination6 (RFC 4443 2.4 e.3)", multicastDst6(), 1400, tunnel6},
		{"ipv6 mtu below 1280 says 1280", udp6(t, 1500), 1000, tunnel6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, 2000)
			n, err := TooBig(dst, tc.inner, tc.mtu, tc.src)
			if err != nil {
				t.Fatalf("TooBig: %v", err)
			}
			src := tc.src.Unmap()
			if tc.inner[0]>>4 == 4 {
				checkFragNeeded(t, dst[:n], tc.inner, max(tc.mtu, 68), src)
			} else {
				checkPacketTooBig(t, dst[:n], tc.inner, tc.mtu, src)
			}
		})
	}
}

// The cases in which no error may be sent, and the reason given.
func TestTooBigRefuses(t *testing.T) {
	icmp4 := func(typ, code uint8) []byte {
		return serialize(t, ip4(host4A, host4B, layers.IPProtocolICMPv4, true),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, fill(1472))
	}
	icmp6 := func(typ uint8, ext ...gopacket.SerializableLayer) []byte {
		next := layers.IPProtocolICMPv6
		if len(ext) > 0 {
			next = layers.IPProtocolIPv6HopByHop
		}
		ip := ip6(host6A, host6B, next)
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
		icmp.SetNetworkLayerForChecksum(ip)
		ls := append([]gopacket.SerializableLayer{ip}, ext...)
		return serialize(t, append(ls, icmp, fill(1452))...)
	}
	hbh := func() gopacket.SerializableLayer {
		h := &layers.IPv6HopByHop{}
		h.NextHeader = layers.IPProtocolICMPv6
		h.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}
		return h
	}
	withSrc4 := func(src, dst string) []byte {
		ip := ip4(netip.MustParseAddr(src), netip.MustParseAddr(dst), layers.IPProtocolUDP, true)
		return serialize(t, ip, fill(1480))
	}
	withSrc6 := func(src string) []byte {
		return serialize(t, ip6(netip.MustParseAddr(src), host6B, layers.IPProtocolUDP), fill(1460))
	}
	frag4 := func(offset uint16) []byte {
		ip := ip4(host4A, host4B, layers.IPProtocolUDP, true)
		ip.FragOffset = offset
		return serialize(t, ip, fill(1480))
	}
	frag6 := func() []byte {
		// The bytes after the header look like an ICMPv6 error but are
		// the middle of a payload.
		fr := frag6Header(layers.IPProtocolICMPv6, 185, false)
		return serialize(t, ip6(host6A, host6B, layers.IPProtocolIPv6Fragment), fr, append(gopacket.Payload{1, 0}, fill(1450)...))
	}
	truncated := udp4(t, 1500, true)[:1400]
	badIHL := udp4(t, 1500, true)
	badIHL[0] = 0x44
	ipv5 := udp4(t, 1500, true)
	ipv5[0] = 0x55
	truncExt := serialize(t, ip6(host6A, host6B, layers.IPProtocolIPv6Destination), gopacket.Payload{17, 200}, fill(1398))
	jumbo := udp6(t, 1500)
	jumbo[4], jumbo[5] = 0, 0
	onlyICMPHeader6 := serialize(t, ip6(host6A, host6B, layers.IPProtocolIPv6Destination), gopacket.Payload{58, 179}, fill(1438))

	for _, tc := range []struct {
		name  string
		inner []byte
		mtu   int
		src   netip.Addr
		want  error
	}{
		{"empty", nil, 1476, tunnel4, ErrMalformed},
		{"ip version 5", ipv5, 1476, tunnel4, ErrMalformed},
		{"IHL 4", badIHL, 1476, tunnel4, ErrMalformed},
		{"total length beyond the bytes", truncated, 1300, tunnel4, ErrMalformed},
		{"ipv6 jumbogram", jumbo, 1280, tunnel6, ErrMalformed},
		{"ipv6 extension header past the end", truncExt, 1280, tunnel6, ErrMalformed},
		{"ipv6 header chain ends exactly at ICMPv6 with no type", onlyICMPHeader6, 1280, tunnel6, ErrMalformed},
		{"fits", udp4(t, 1476, true), 1476, tunnel4, ErrFits},
		{"ipv6 fits the minimum MTU", udp6(t, 1280), 1200, tunnel6, ErrFits},
		{"mtu over 65535", udp4(t, 1500, true), 70000, tunnel4, ErrFits},
		{"DF clear", udp4(t, 1500, false), 1476, tunnel4, ErrMayFragment},
		{"non-first fragment4", frag4(185), 1476, tunnel4, ErrFragment},
		{"non-first fragment6", frag6(), 1400, tunnel6, ErrFragment},
		{"dest unreachable", icmp4(3, 1), 1476, tunnel4, ErrICMPError},
		{"frag needed", icmp4(3, 4), 1476, tunnel4, ErrICMPError},
		{"source quench", icmp4(4, 0), 1476, tunnel4, ErrICMPError},
		{"redirect", icmp4(5, 1), 1476, tunnel4, ErrICMPError},
		{"time exceeded", icmp4(11, 0), 1476, tunnel4, ErrICMPError},
		{"parameter problem", icmp4(12, 0), 1476, tunnel4, ErrICMPError},
		{"unknown type 19 (as Linux)", icmp4(19, 0), 1476, tunnel4, ErrICMPError},
		{"icmpv6 dest unreachable", icmp6(1), 1400, tunnel6, ErrICMPError},
		{"icmpv6 packet too big", icmp6(2), 1400, tunnel6, ErrICMPError},
		{"icmpv6 time exceeded", icmp6(3), 1400, tunnel6, ErrICMPError},
		{"icmpv6 parameter problem", icmp6(4), 1400, tunnel6, ErrICMPError},
		{"icmpv6 type 127", icmp6(127), 1400, tunnel6, ErrICMPError},
		{"icmpv6 error after hop-by-hop", icmp6(1, hbh()), 1400, tunnel6, ErrICMPError},
		{"source 0.0.0.0", withSrc4("0.0.0.0", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"source 0/8", withSrc4("0.1.2.3", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"source loopback", withSrc4("127.0.0.1", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"source multicast", withSrc4("224.0.0.5", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"source class E", withSrc4("240.0.0.1", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"source broadcast", withSrc4("255.255.255.255", "203.0.113.20"), 1476, tunnel4, ErrAddress},
		{"destination multicast", withSrc4("198.51.100.10", "239.1.2.3"), 1476, tunnel4, ErrAddress},
		{"destination broadcast", withSrc4("198.51.100.10", "255.255.255.255"), 1476, tunnel4, ErrAddress},
		{"source ::", withSrc6("::"), 1400, tunnel6, ErrAddress},
		{"source ::1", withSrc6("::1"), 1400, tunnel6, ErrAddress},
		{"source multicast6", withSrc6("ff02::1"), 1400, tunnel6, ErrAddress},
		{"no source", udp4(t, 1500, true), 1476, netip.Addr{}, ErrSource},
		{"ipv6 source for ipv4", udp4(t, 1500, true), 1476, tunnel6, ErrSource},
		{"ipv4 source for ipv6", udp6(t, 1500), 1476, tunnel4, ErrSource},
		{"mapped source for ipv6", udp6(t, 1500), 1476, netip.AddrFrom16(tunnel4.As16()), ErrSource},
		{"multicast source", udp4(t, 1500, true), 1476, netip.MustParseAddr("224.0.0.1"), ErrSource},
		{"unspecified source6", udp6(t, 1500), 1476, netip.IPv6Unspecified(), ErrSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := bytes.Repeat([]byte{0xee}, 2000)
			n, err := TooBig(dst, tc.inner, tc.mtu, tc.src)
			if !errors.Is(err, tc.want) || n != 0 {
				t.Errorf("TooBig = %d, %v; want 0, %v", n, err, tc.want)
			}
			if !bytes.Equal(dst, bytes.Repeat([]byte{0xee}, 2000)) {
				t.Errorf("TooBig wrote into dst although it refused")
			}
		})
	}
}

func TestTooBigShortBuffer(t *testing.T) {
	for _, tc := range []struct {
		inner []byte
		src   netip.Addr
		need  int
	}{
		{udp4(t, 1500, true), tunnel4, 56},
		{udp6(t, 1500), tunnel6, 1280},
	} {
		dst := make([]byte, tc.need)
		if _, err := TooBig(dst[:tc.need-1], tc.inner, 1400, tc.src); !errors.Is(err, ErrShortBuffer) {
			t.Errorf("%d-byte buffer: err = %v, want ErrShortBuffer", tc.need-1, err)
		}
		if n, err := TooBig(dst, tc.inner, 1400, tc.src); err != nil || n != tc.need {
			t.Errorf("%d-byte buffer: %d, %v; want %d, nil", tc.need, n, err, tc.need)
		}
	}
}

// Building the error in the buffer the packet was read into, with the
// quote left in place, gives the same bytes as building it elsewhere;
// so does any other overlap.
func TestTooBigInPlace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inner []byte
		src   netip.Addr
		hdr   int
	}{
		{"ipv4", udp4(t, 1500, true), tunnel4, HeaderLen4},
		{"ipv6", udp6(t, 1500), tunnel6, HeaderLen6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := make([]byte, 2000)
			n, err := TooBig(want, tc.inner, 1400, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			want = want[:n]
			for _, shift := range []int{-tc.hdr, -tc.hdr - 3, -1, 0, 5, 100} {
				const off = 100 // headroom in front of the packet
				buf := make([]byte, off+len(tc.inner)+200)
				copy(buf[off:], tc.inner)
				n, err := TooBig(buf[off+shift:], buf[off:off+len(tc.inner)], 1400, tc.src)
				if err != nil || !bytes.Equal(buf[off+shift:off+shift+n], want) {
					t.Errorf("dst at inner%+d: %v, bytes differ: %v", shift, err, !bytes.Equal(buf[off+shift:off+shift+n], want))
				}
			}
		})
	}
}

// TestParamProblem6 is a tunnel entry point refusing a nested packet whose
// encapsulation limit is 0: a Parameter Problem, code 0, pointing at the
// limit, checked field by field and checksum by gopacket; errors, later
// fragments and multicast sources get none.
func TestParamProblem6(t *testing.T) {
	inner := append([]byte{
		0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3c, 0x40, // payload 16, destination options, hop limit 64
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
		0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
		0x29, 0x00, 0x04, 0x01, 0x00, 0x01, 0x01, 0x00, // next header IPv6, encapsulation limit 0
	}, fill(8)...)
	dst := make([]byte, MaxLen6)
	n, err := ParamProblem6(dst, inner, 44, tunnel6)
	if err != nil {
		t.Fatal(err)
	}
	pkt := dst[:n]
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip == nil || icmp == nil || len(icmp.Payload) < 4 {
		t.Fatalf("gopacket found no IPv6/ICMPv6 in %x", pkt)
	}
	want := packetTooBig{tunnel6.String(), "2001:db8:1::10", 58, 64, len(pkt) - 40, 4, 0, 44, inner}
	got := packetTooBig{ip.SrcIP.String(), ip.DstIP.String(), uint8(ip.NextHeader), ip.HopLimit,
		int(ip.Length), icmp.TypeCode.Type(), icmp.TypeCode.Code(), be32(icmp.Payload), icmp.Payload[4:]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded error (-want +got):\n%s", diff)
	}
	if c := rfc1071(pseudo(tunnel6, netip.MustParseAddr("2001:db8:1::10"), 58, len(pkt)-40), pkt[40:]); c != 0 {
		t.Errorf("ICMPv6 message does not verify: %#04x", c)
	}
	multicast := append([]byte(nil), inner...)
	multicast[8] = 0xff
	for name, in := range map[string][]byte{"multicast source": multicast, "truncated": inner[:30]} {
		if _, err := ParamProblem6(dst, in, 44, tunnel6); err == nil {
			t.Errorf("%s: answered", name)
		}
	}
}
