package decap_test

import (
	"encoding/binary"
	"testing"

	"github.com/gretun/gretun/decap"
)

// BenchmarkDecap parses and accepts a 1400-byte IPv4 inner packet for the
// tunnels the issue asks figures for. With sequence numbers, each
// iteration writes the next number into the packet so that the receiver
// accepts it (iseq on).
func BenchmarkDecap(b *testing.B) {
	inner := make([]byte, 1400)
	copy(inner, in4)
	binary.BigEndian.PutUint16(inner[2:], 1400)
	fixIP(inner)
	for _, c := range []struct {
		name   string
		pkt    []byte
		policy decap.Policy
	}{
		{"gre", build(47, greHdr(0, 0x0800, 0, 0), inner), decap.Policy{}},
		{"gre-key-seq", build(47, greHdr(0x3000, 0x0800, 42, 0), inner), decap.Policy{HasKey: true, Key: 42, RequireSequence: true}},
		{"gre-csum", build(47, greHdr(0x8000, 0x0800, 0, 0), inner), decap.Policy{RequireChecksum: true}},
		{"ipip", build(4, inner), decap.Policy{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			rx := decap.NewReceiver(c.policy)
			var p decap.Packet
			seq := uint32(0)
			b.ReportAllocs()
			b.SetBytes(int64(len(inner)))
			for b.Loop() {
				if c.policy.RequireSequence {
					binary.BigEndian.PutUint32(c.pkt[28:], seq)
					seq++
				}
				if r := decap.Parse(c.pkt, &p); r != decap.OK {
					b.Fatal(r)
				}
				if r := rx.Accept(&p); r != decap.OK {
					b.Fatal(r)
				}
			}
		})
	}
}

// BenchmarkDecapWire is BenchmarkDecap for an outer IPv6 header (Parse6)
// and for GRE after a UDP socket stripped IP and UDP (ParseGRE).
func BenchmarkDecapWire(b *testing.B) {
	inner := make([]byte, 1400)
	copy(inner, in4)
	binary.BigEndian.PutUint16(inner[2:], 1400)
	fixIP(inner)
	ip6 := build6(47, 0, greHdr(0, 0x0800, 0, 0), inner)
	gre := cat(greHdr(0, 0x0800, 0, 0), inner)
	// As Linux sends them; rawsock.Conn6 delivers them without the option.
	ip6gre := build6(60, 8, linuxLimit(47, 4), greHdr(0, 0x0800, 0, 0), inner)
	ipip6 := build6(4, -1, inner)
	for _, c := range []struct {
		name  string
		parse func(*decap.Packet) decap.Reason
	}{
		{"ipv6-gre", func(p *decap.Packet) decap.Reason { return decap.Parse6(ip6, p) }},
		{"ip6gre-encaplimit", func(p *decap.Packet) decap.Reason { return decap.Parse6(ip6gre, p) }},
		{"ipip6", func(p *decap.Packet) decap.Reason { return decap.Parse6(ipip6, p) }},
		{"gre-after-udp", func(p *decap.Packet) decap.Reason { return decap.ParseGRE(gre, 0, p) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			rx := decap.NewReceiver(decap.Policy{})
			var p decap.Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(inner)))
			for b.Loop() {
				if r := c.parse(&p); r != decap.OK {
					b.Fatal(r)
				}
				if r := rx.Accept(&p); r != decap.OK {
					b.Fatal(r)
				}
			}
		})
	}
}
