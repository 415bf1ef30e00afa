package pmtu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Addresses from the documentation ranges only.
var (
	tunnel4 = netip.MustParseAddr("192.0.2.1")      // our tunnel endpoint
	host4A  = netip.MustParseAddr("198.51.100.10")  // sender behind us
	host4B  = netip.MustParseAddr("203.0.113.20")   // destination across the tunnel
	tunnel6 = netip.MustParseAddr("2001:db8:ff::1") // our tunnel device address
	host6A  = netip.MustParseAddr("2001:db8:1::10")
	host6B  = netip.MustParseAddr("2001:db8:2::20")
)

// rfc1071 is the Internet checksum written the plain way, 16 bits at a
// time, so tests do not check the package with its own arithmetic.
func rfc1071(chunks ...[]byte) uint16 {
	var s uint32
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	for i := 0; i+1 < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
	}
	if len(all)%2 == 1 {
		s += uint32(all[len(all)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// pseudo returns the IPv4 or IPv6 pseudo-header for an upper-layer
// packet of length n and protocol proto.
func pseudo(src, dst netip.Addr, proto byte, n int) []byte {
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		b := append(s[:], d[:]...)
		return append(b, 0, proto, byte(n>>8), byte(n))
	}
	s, d := src.As16(), dst.As16()
	b := append(s[:], d[:]...)
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
}

// serialize builds a packet with gopacket, lengths and checksums filled.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4(src, dst netip.Addr, proto layers.IPProtocol, df bool) *layers.IPv4 {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: proto,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	return ip
}

func ip6(src, dst netip.Addr, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
}

// fill returns n bytes of a recognisable pattern.
func fill(n int) gopacket.Payload {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// udp4 is an IPv4 UDP packet of total length n from host4A to host4B.
func udp4(t testing.TB, n int, df bool) []byte {
	ip := ip4(host4A, host4B, layers.IPProtocolUDP, df)
	u := &layers.UDP{SrcPort: 40000, DstPort: 5001}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, u, fill(n-28))
}

// udp6 is an IPv6 UDP packet of total length n from host6A to host6B.
func udp6(t testing.TB, n int) []byte {
	ip := ip6(host6A, host6B, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: 40000, DstPort: 5001}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, u, fill(n-48))
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// frag6Header is an IPv6 Fragment header (RFC 8200 §4.5), which
// gopacket cannot serialize: next header, reserved, offset in 8-octet
// units with the M flag, identification.
func frag6Header(next layers.IPProtocol, offset uint16, more bool) gopacket.Payload {
	v := offset << 3
	if more {
		v |= 1
	}
	return gopacket.Payload{byte(next), 0, byte(v >> 8), byte(v), 0, 0, 0, 7}
}
