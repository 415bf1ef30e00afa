package header

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// quote4 is the start of an offending packet: an IPv4 header (GRE,
// 192.0.2.1 → 192.0.2.2) and 8 bytes of its payload.
var quote4 = []byte{
	0x45, 0x00, 0x05, 0xdc, // version 4, IHL 5, TOS 0, total length 1500
	0x12, 0x34, 0x40, 0x00, // ID, DF
	0x40, 0x2f, 0x00, 0x00, // TTL 64, GRE, checksum (not checked in a quote)
	192, 0, 2, 1, // source
	192, 0, 2, 2, // destination
	0x20, 0x00, 0x08, 0x00, // GRE: K, IPv4
	0x00, 0x00, 0x00, 0x2a, // key 42
}

func TestICMPv4FragNeeded(t *testing.T) {
	golden := append([]byte{
		3, 4, // type Destination Unreachable, code Fragmentation Needed
		0xff, 0xff, // checksum, filled below
		0x00, 0x00, // unused
		0x05, 0x78, // next-hop MTU 1400
	}, quote4...)
	// The checksum of the golden message, the RFC 1071 way.
	golden[2], golden[3] = 0, 0
	c := naiveSum(golden)
	golden[2], golden[3] = byte(c>>8), byte(c)

	b := ICMPv4(make([]byte, len(golden)))
	copy(b[ICMPv4Quote:], quote4)
	b.EncodeFragNeeded(1400)
	if !bytes.Equal(b, golden) {
		t.Fatalf("EncodeFragNeeded:\n got % x\nwant % x", []byte(b), golden)
	}
	if !b.IsValid() || b.Type() != ICMPv4DstUnreachable || b.Code() != ICMPv4FragNeeded ||
		b.Checksum() != c || !b.ChecksumValid() || b.NextHopMTU() != 1400 || !bytes.Equal(b.Quote(), quote4) {
		t.Errorf("ICMPv4 accessors disagree with the bytes % x", []byte(b))
	}
	b[ICMPv4NextHopMTU]++
	if b.ChecksumValid() {
		t.Error("checksum still valid after a change")
	}
	if ICMPv4(golden[:7]).IsValid() {
		t.Error("7 bytes is not an ICMP header")
	}

	// gopacket builds the same message: its Seq is the second half of the
	// second word, where RFC 1191 puts the MTU.
	sb := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quote4))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sb.Bytes(), golden) {
		t.Errorf("gopacket:\n got % x\nwant % x", sb.Bytes(), golden)
	}
	var l layers.ICMPv4
	if err := l.DecodeFromBytes(golden, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if l.TypeCode.Type() != ICMPv4(golden).Type() || l.TypeCode.Code() != ICMPv4(golden).Code() ||
		l.Checksum != ICMPv4(golden).Checksum() || l.Seq != ICMPv4(golden).NextHopMTU() || !bytes.Equal(l.Payload, ICMPv4(golden).Quote()) {
		t.Errorf("gopacket decodes %+v", l)
	}
}

func TestICMPv6PacketTooBig(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	quote := make([]byte, 48)
	for i := range quote {
		quote[i] = byte(i)
	}
	msg := append([]byte{
		2, 0, // type Packet Too Big, code 0
		0, 0, // checksum, filled below
		0x00, 0x00, 0x05, 0x00, // MTU 1280
	}, quote...)
	// RFC 8200 §8.1 pseudo-header: source, destination, length, zeros, next header.
	pseudo := append(append(src.AsSlice(), dst.AsSlice()...), 0, 0, 0, byte(len(msg)), 0, 0, 0, ProtoICMPv6)
	c := naiveSum(append(pseudo, msg...))
	golden := append([]byte(nil), msg...)
	golden[2], golden[3] = byte(c>>8), byte(c)

	b := ICMPv6(make([]byte, len(golden)))
	copy(b[ICMPv6Quote:], quote)
	addrs := append(src.AsSlice(), dst.AsSlice()...)
	b.EncodePacketTooBig(1280, addrs)
	if !bytes.Equal(b, golden) {
		t.Fatalf("EncodePacketTooBig:\n got % x\nwant % x", []byte(b), golden)
	}
	if !b.IsValid() || b.Type() != ICMPv6PacketTooBig || b.Code() != 0 || !b.IsError() || b.Checksum() != c ||
		b.MTU() != 1280 || !bytes.Equal(b.Quote(), quote) {
		t.Errorf("ICMPv6 accessors disagree with the bytes % x", []byte(b))
	}
	for typ, isErr := range map[uint8]bool{1: true, 2: true, 127: true, 128: false, 129: false, 255: false} {
		if got := (ICMPv6{typ, 0, 0, 0, 0, 0, 0, 0}).IsError(); got != isErr {
			t.Errorf("type %d: IsError = %v", typ, got)
		}
	}
	if ICMPv6(golden[:7]).IsValid() {
		t.Error("7 bytes is not an ICMPv6 header")
	}

	// gopacket computes the same checksum over an IPv6 packet carrying it.
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice())}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	sb := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		ip, icmp, gopacket.Payload(golden[4:]))
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.Bytes()[IPv6HeaderLen:]; !bytes.Equal(got, golden) {
		t.Errorf("gopacket:\n got % x\nwant % x", got, golden)
	}
}
