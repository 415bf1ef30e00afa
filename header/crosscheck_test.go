package header

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Encode cross-checked with gopacket, extension-header lengths, IPVersion.

func TestIPv4EncodeGopacket(t *testing.T) {
	golden := []byte{
		0x45, 0xc0, 0x00, 0x40, // version 4, IHL 5, TOS 0xc0, total length 64
		0x12, 0x34, 0x40, 0x00, // ID, DF
		0x40, 0x01, 0x00, 0x00, // TTL 64, ICMP, checksum (filled below)
		192, 0, 2, 1, // source
		198, 51, 100, 7, // destination
	}
	c := naiveSum(golden)
	golden[10], golden[11] = byte(c>>8), byte(c)

	b := IPv4(make([]byte, IPv4MinLen))
	b.Encode(&IPv4Fields{TOS: 0xc0, TotalLen: 64, ID: 0x1234, FlagsFrag: IPv4FlagDF, TTL: 64, Protocol: ProtoICMP,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.7")})
	if !bytes.Equal(b, golden) {
		t.Fatalf("Encode:\n got % x\nwant % x", []byte(b), golden)
	}
	if !bytes.Equal(b.Addrs(), golden[12:20]) {
		t.Errorf("Addrs = % x", b.Addrs())
	}

	ip := &layers.IPv4{Version: 4, IHL: 5, TOS: 0xc0, Length: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, TTL: 64,
		Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 7}}
	sb := gopacket.NewSerializeBuffer()
	if err := ip.SerializeTo(sb, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes(), golden) {
		t.Errorf("gopacket:\n got % x\nwant % x", sb.Bytes(), golden)
	}
}

func TestIPv6EncodeGopacket(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	golden := append([]byte{
		0x6b, 0x91, 0x23, 0x45, // version 6, traffic class 0xb9, flow label 0x12345
		0x00, 0x10, 58, 33, // payload length 16, ICMPv6, hop limit 33
	}, append(src.AsSlice(), dst.AsSlice()...)...)

	b := IPv6(make([]byte, IPv6HeaderLen))
	b.Encode(&IPv6Fields{TrafficClass: 0xb9, FlowLabel: 0xfff12345, PayloadLen: 16, NextHeader: ProtoICMPv6, HopLimit: 33, Src: src, Dst: dst})
	if !bytes.Equal(b, golden) {
		t.Fatalf("Encode:\n got % x\nwant % x", []byte(b), golden)
	}
	if !bytes.Equal(b.Addrs(), golden[8:40]) {
		t.Errorf("Addrs = % x", b.Addrs())
	}
	b.SetPayloadLen(0x1234)
	if b.PayloadLen() != 0x1234 || b[4] != 0x12 || b[5] != 0x34 {
		t.Errorf("SetPayloadLen wrote % x", []byte(b[4:6]))
	}

	ip := &layers.IPv6{Version: 6, TrafficClass: 0xb9, FlowLabel: 0x12345, Length: 16, NextHeader: layers.IPProtocolICMPv6,
		HopLimit: 33, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	sb := gopacket.NewSerializeBuffer()
	if err := ip.SerializeTo(sb, gopacket.SerializeOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes(), golden) {
		t.Errorf("gopacket:\n got % x\nwant % x", sb.Bytes(), golden)
	}
}

func TestIPv6ExtLengths(t *testing.T) {
	opts := IPv6Ext{ProtoTCP, 1, 0, 0, 0, 0, 0, 0} // destination options, 16 bytes
	if opts.NextHeader() != ProtoTCP || opts.Len(IPv6DestOpts) != 16 || opts.Len(IPv6HopByHop) != 16 {
		t.Errorf("options header: next %d len %d", opts.NextHeader(), opts.Len(IPv6DestOpts))
	}
	frag := IPv6Ext{ProtoUDP, 0, 0x05, 0xa9, 0, 0, 0, 1} // offset 181 (1448 bytes), M
	if frag.NextHeader() != ProtoUDP || frag.Len(IPv6Fragment) != 8 || frag.FragmentOffset() != 1448 {
		t.Errorf("fragment header: next %d len %d offset %d", frag.NextHeader(), frag.Len(IPv6Fragment), frag.FragmentOffset())
	}
	ah := IPv6Ext{ProtoTCP, 4, 0, 0} // Payload Len 4: 24 bytes (RFC 4302 §2.2)
	if ah.AHLen() != 24 {
		t.Errorf("AHLen = %d, want 24", ah.AHLen())
	}
}

func TestIPVersion(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want int
	}{{nil, -1}, {[]byte{0x45}, 4}, {[]byte{0x60, 0}, 6}, {[]byte{0x0f}, 0}, {[]byte{0xff}, 15}} {
		if got := IPVersion(c.b); got != c.want {
			t.Errorf("IPVersion(% x) = %d, want %d", c.b, got, c.want)
		}
	}
}
