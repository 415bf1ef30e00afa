package encap_test

import (
	"net/netip"
	"testing"

	"github.com/gretun/gretun/encap"
)

// benchConfigs are the tunnels the issue asks figures for.
var benchConfigs = []struct {
	name string
	cfg  encap.Config
}{
	{"gre", encap.Config{Mode: encap.ModeGRE}},
	{"gre-key-seq", encap.Config{Mode: encap.ModeGRE, HasKey: true, Key: 42, Sequence: true}},
	{"gre-csum", encap.Config{Mode: encap.ModeGRE, Checksum: true}},
	{"ipip", encap.Config{Mode: encap.ModeIPIP}},
}

// innerIPv4 returns a valid IPv4 packet of n bytes (UDP, DF set, TTL 64).
func innerIPv4(n int) []byte {
	p := make([]byte, n)
	copy(p, []byte{
		0x45, 0x00, byte(n >> 8), byte(n), // version 4, IHL 5, TOS 0, total length n
		0x12, 0x34, 0x40, 0x00, // ID 0x1234, DF
		0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum (filled below)
		198, 51, 100, 1, // source
		203, 0, 113, 1, // destination
	})
	for i := 20; i < n; i++ {
		p[i] = byte(i)
	}
	fixIPv4Checksum(p)
	return p
}

func BenchmarkEncap(b *testing.B) {
	for _, bc := range benchConfigs {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bc.cfg
			cfg.Local = netip.MustParseAddr("192.0.2.1")
			cfg.Remote = netip.MustParseAddr("192.0.2.2")
			benchEncap(b, cfg, encap.Headroom)
		})
	}
}

// benchEncap encapsulates a 1400-byte inner IPv4 packet read at offset
// room, TTL 255, once per iteration.
func benchEncap(b *testing.B, cfg encap.Config, room int) {
	cfg.TTL = 255
	e, err := encap.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	inner := innerIPv4(1400)
	buf := make([]byte, room+len(inner))
	copy(buf[room:], inner)
	b.ReportAllocs()
	b.SetBytes(int64(len(inner)))
	for b.Loop() {
		if _, err := e.Encap(buf, room); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFragment splits a 3000-byte outer packet for a 1500-byte MTU.
func BenchmarkFragment(b *testing.B) {
	pkt := innerIPv4(3000)
	pkt[6] = 0 // no DF
	fixIPv4Checksum(pkt)
	frags := make([][]byte, 4)
	for i := range frags {
		frags[i] = make([]byte, 0, 1500)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, err := encap.Fragment(pkt, 1500, frags); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncapWire is BenchmarkEncap for the other outer formats: IPv6
// (ip6gre, ipip6 and mode any as Linux sends them, with the encapsulation limit
// option, and without it), and GRE-in-UDP over both families.
func BenchmarkEncapWire(b *testing.B) {
	l4, r4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l6, r6 := netip.MustParseAddr("2001:db8::a"), netip.MustParseAddr("2001:db8::b")
	for _, bc := range []struct {
		name string
		cfg  encap.Config
	}{
		{"ipv6-gre", encap.Config{Mode: encap.ModeGRE, Local: l6, Remote: r6}},
		{"ip6gre", encap.Config{Mode: encap.ModeGRE, Local: l6, Remote: r6, TTL: 64, HasEncapLimit: true, EncapLimit: 4, FlowLabelAuto: true}},
		{"ipip6", encap.Config{Mode: encap.ModeIPIP, Local: l6, Remote: r6, TTL: 64, HasEncapLimit: true, EncapLimit: 4, FlowLabelAuto: true}},
		{"ipv6-ipip", encap.Config{Mode: encap.ModeIPIP, Local: l6, Remote: r6}},
		{"any-ipv4", encap.Config{Mode: encap.ModeIP6Any, Local: l6, Remote: r6, TTL: 64, HasEncapLimit: true, EncapLimit: 4, FlowLabelAuto: true}},
		{"ipv4-udp-gre", encap.Config{Mode: encap.ModeGRE, Local: l4, Remote: r4, UDP: true, SrcPort: 49152, DstPort: 4754}},
		{"ipv6-udp-csum-gre", encap.Config{Mode: encap.ModeGRE, Local: l6, Remote: r6, UDP: true, SrcPort: 49152, DstPort: 4754, UDPChecksum: true}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchEncap(b, bc.cfg, encap.HeadroomMax) })
	}
}
