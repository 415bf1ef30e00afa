package encap_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testpkt"
)

// Outer IPv6 endpoints for the tests of IPv6 and UDP underlays.
var (
	local6  = netip.MustParseAddr("2001:db8::a")
	remote6 = netip.MustParseAddr("2001:db8::b")
)

// in6Flow is an IPv6 packet with flow label 0x12345 and no payload.
var in6Flow = []byte{
	0x60, 0x01, 0x23, 0x45, 0x00, 0x00, 0x3b, 0x40, // flow label 0x12345, payload 0, no next header, hop limit 64
	0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
}

// frame is an Ethernet frame carrying in4, the payload of a gretap tunnel.
var frame = append([]byte{
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination MAC
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source MAC
	0x08, 0x00, // EtherType IPv4
}, in4...)

var wireCases = []struct {
	name  string
	cfg   encap.Config
	inner []byte
	want  []byte // the outer headers
}{
	{
		name:  "ipv6 gre key",
		cfg:   encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 255, HasKey: true, Key: 7},
		inner: in4,
		want: []byte{
			0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
			0x00, 0x24, 0x2f, 0xff, // payload length 36 (GRE 8 + 28), next header GRE, hop limit 255
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, // source 2001:db8::a
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, // destination 2001:db8::b
			0x20, 0x00, 0x08, 0x00, // GRE: K; protocol IPv4
			0x00, 0x00, 0x00, 0x07, // key 7
		},
	},
	{
		name:  "ipv4 in ipv6, ttl and tos inherited",
		cfg:   encap.Config{Mode: encap.ModeIPIP, Local: local6, Remote: remote6, TOSInherit: true},
		inner: in4EFCE,
		want: []byte{
			0x6b, 0xb0, 0x00, 0x00, // version 6, traffic class 0xbb (EF, CE) from the inner TOS
			0x00, 0x1c, 0x04, 0x11, // payload length 28, next header IPIP, hop limit 17 from the inner TTL
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
		},
	},
	{
		name:  "ip6gre as Linux sends it: encaplimit 4, hoplimit 64",
		cfg:   encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4, FlowLabel: 0xabcde},
		inner: in6,
		want: []byte{
			0x60, 0x1a, 0xbc, 0xde, // version 6, traffic class 0x01 (ECT(1) from the inner), flow label 0xabcde
			0x00, 0x3c, 0x3c, 0x40, // payload length 60 (8 + GRE 4 + 48), next header destination options, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
			0x2f, 0x00, // destination options: next header GRE, length 8
			0x04, 0x01, 0x04, // tunnel encapsulation limit (RFC 2473 4.1.1): 4
			0x01, 0x01, 0x00, // PadN of one byte
			0x00, 0x00, 0x86, 0xdd, // GRE: protocol IPv6
		},
	},
	{
		name:  "ip6ip6, encaplimit 0, flow label inherited",
		cfg:   encap.Config{Mode: encap.ModeIP6, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, FlowLabelInherit: true},
		inner: in6Flow,
		want: []byte{
			0x60, 0x01, 0x23, 0x45, // version 6, traffic class 0, flow label 0x12345 from the inner
			0x00, 0x30, 0x3c, 0x40, // payload length 48 (8 + 40), destination options, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
			0x29, 0x00, // destination options: next header IPv6
			0x04, 0x01, 0x00, // encapsulation limit 0: the far end may not encapsulate it again
			0x01, 0x01, 0x00,
		},
	},
	{
		name:  "mode any, ipv4 inside: next header 4 after the encapsulation limit",
		cfg:   encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4},
		inner: in4,
		want: []byte{
			0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
			0x00, 0x24, 0x3c, 0x40, // payload length 36 (8 + 28), destination options, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
			0x04, 0x00, // destination options: next header IPIP (4)
			0x04, 0x01, 0x04, // encapsulation limit 4
			0x01, 0x01, 0x00,
		},
	},
	{
		name:  "mode any, ipv6 inside: next header 41 after the encapsulation limit",
		cfg:   encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4},
		inner: in6Flow,
		want: []byte{
			0x60, 0x00, 0x00, 0x00,
			0x00, 0x30, 0x3c, 0x40, // payload length 48 (8 + 40), destination options, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
			0x29, 0x00, // destination options: next header IPv6 (41)
			0x04, 0x01, 0x04,
			0x01, 0x01, 0x00,
		},
	},
	{
		name:  "mode any, encaplimit none, ipv4 inside: next header 4",
		cfg:   encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, TTL: 64},
		inner: in4,
		want: []byte{
			0x60, 0x00, 0x00, 0x00,
			0x00, 0x1c, 0x04, 0x40, // payload length 28, next header IPIP, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
		},
	},
	{
		name:  "mode any, encaplimit none, ipv6 inside: next header 41",
		cfg:   encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, TTL: 64},
		inner: in6Flow,
		want: []byte{
			0x60, 0x00, 0x00, 0x00,
			0x00, 0x28, 0x29, 0x40, // payload length 40, next header IPv6, hop limit 64
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
		},
	},
	{
		name:  "sit (ipv6 in ipv4) as tunnel brokers ask: ttl 255, pmtudisc, tos inherit",
		cfg:   encap.Config{Mode: encap.ModeIP6, Local: local, Remote: remote, TTL: 255, DF: encap.DFSet, TOSInherit: true},
		inner: in6,
		want: []byte{
			0x45, 0xb9, 0x00, 0x44, // version 4, IHL 5, TOS 0xb9 (EF, ECT(1)) from the inner traffic class, total length 68
			0x00, 0x01, 0x40, 0x00, // ID 1, DF
			0xff, 0x29, 0xf6, 0xd2, // TTL 255, protocol 41 (IPv6), header checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2; the inner IPv6 packet follows at once
		},
	},
	{
		name:  "sit in udp (fou ipproto 41)",
		cfg:   encap.Config{Mode: encap.ModeIP6, Local: local, Remote: remote, TTL: 64, DF: encap.DFSet, UDP: true, SrcPort: 0xc000, DstPort: 5556},
		inner: in6,
		want: []byte{
			0x45, 0x01, 0x00, 0x4c, // version 4, IHL 5, TOS 0x01 (ECT(1) copied from the inner), total length 76
			0x00, 0x01, 0x40, 0x00, // ID 1, DF
			0x40, 0x11, 0xb6, 0x9b, // TTL 64, protocol UDP, header checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2
			0xc0, 0x00, 0x15, 0xb4, // UDP source port 49152, destination port 5556
			0x00, 0x38, 0x00, 0x00, // length 56, checksum 0; the inner IPv6 packet follows at once
		},
	},
	{
		name:  "ipv4 udp gre, no udp checksum",
		cfg:   encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 255, DF: encap.DFSet, UDP: true, SrcPort: 0xc000, DstPort: header.UDPPortGRE},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x3c, // version 4, IHL 5, TOS 0, total length 60
			0x00, 0x01, 0x40, 0x00, // ID 1, DF
			0xff, 0x11, 0xf7, 0xab, // TTL 255, protocol UDP, header checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2
			0xc0, 0x00, 0x12, 0x92, // UDP source port 49152, destination port 4754 (GRE-in-UDP)
			0x00, 0x28, 0x00, 0x00, // length 40, checksum 0 (none)
			0x00, 0x00, 0x08, 0x00, // GRE: no options; protocol IPv4
		},
	},
	{
		name:  "ipv4 in udp (fou ipproto 4)",
		cfg:   encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, TTL: 64, DF: encap.DFSet, UDP: true, SrcPort: 0xc000, DstPort: 5555},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x38, // version 4, IHL 5, TOS 0, total length 56
			0x00, 0x01, 0x40, 0x00, // ID 1, DF
			0x40, 0x11, 0xb6, 0xb0, // TTL 64, protocol UDP, header checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2
			0xc0, 0x00, 0x15, 0xb3, // UDP source port 49152, destination port 5555
			0x00, 0x24, 0x00, 0x00, // length 36, checksum 0; the inner IPv4 packet follows at once
		},
	},
	{
		name: "ipv6 udp gre, udp and gre checksums, sequence",
		cfg: encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 255, Checksum: true, Sequence: true,
			UDP: true, SrcPort: 0xc000, DstPort: header.UDPPortGRE, UDPChecksum: true},
		inner: in6,
		want: []byte{
			0x60, 0x10, 0x00, 0x00, // version 6, traffic class 0x01: ECT(1) copied from the inner
			0x00, 0x44, 0x11, 0xff, // payload length 68, next header UDP, hop limit 255
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
			0xc0, 0x00, 0x12, 0x92, // UDP ports 49152 -> 4754
			0x00, 0x44, 0xd1, 0x4c, // length 68, checksum over the IPv6 pseudo-header, UDP, GRE and payload
			0x90, 0x00, 0x86, 0xdd, // GRE: C, S; protocol IPv6
			0xec, 0x39, 0x00, 0x00, // GRE checksum, reserved1
			0x00, 0x00, 0x00, 0x00, // sequence number 0
		},
	},
	{
		name:  "ethernet (gretap): nothing inherited",
		cfg:   encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TOSInherit: true, DF: encap.DFInherit, EtherType: header.EtherTypeTEB},
		inner: frame,
		want: []byte{
			0x45, 0x00, 0x00, 0x42, // TOS 0, total length 66
			0x00, 0x01, 0x00, 0x00, // ID 1, no DF: the frame has none to inherit
			0x40, 0x2f, 0xf6, 0x88, // TTL 64 (the default, ttl inherit), GRE, header checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x65, 0x58, // GRE: protocol 0x6558, Transparent Ethernet Bridging
		},
	},
}

// TestGoldenWire checks the outer IPv6, UDP and Ethernet-type layouts byte
// by byte, and that Overhead (and Config.Overhead) is their length.
func TestGoldenWire(t *testing.T) {
	for _, c := range wireCases {
		t.Run(c.name, func(t *testing.T) {
			e, err := encap.New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if e.Overhead() != len(c.want) || c.cfg.Overhead() != len(c.want) {
				t.Fatalf("Overhead() = %d, Config.Overhead() = %d, want %d", e.Overhead(), c.cfg.Overhead(), len(c.want))
			}
			buf := bytes.Repeat([]byte{0xee}, encap.HeadroomMax)
			buf = append(buf, c.inner...)
			out, err := e.Encap(buf, encap.HeadroomMax)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, out[:len(c.want)]); diff != "" {
				t.Errorf("outer headers (-want +got):\n%s", diff)
			}
			if !bytes.Equal(out[len(c.want):], c.inner) || &out[0] != &buf[encap.HeadroomMax-len(c.want)] {
				t.Errorf("inner packet not left in place")
			}
			if bytes.Count(buf[:encap.HeadroomMax-len(c.want)], []byte{0xee}) != encap.HeadroomMax-len(c.want) {
				t.Errorf("Encap wrote before its headers")
			}
		})
	}
}

// TestGopacketWire has gopacket serialise, with its own checksums, the
// layers each IPv6 or UDP configuration should produce, for packets in a
// row (sequence numbers and, over IPv4, identifications advance), and asks
// for the bytes Encap wrote.
func TestGopacketWire(t *testing.T) {
	for _, c := range wireCases {
		t.Run(c.name, func(t *testing.T) {
			e, err := encap.New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				buf := append(make([]byte, encap.HeadroomMax), c.inner...)
				out, err := e.Encap(buf, encap.HeadroomMax)
				if err != nil {
					t.Fatal(err)
				}
				want := gopacketWire(t, c.cfg, out, c.inner, uint16(i+1), uint32(i))
				if diff := cmp.Diff(want, out); diff != "" {
					t.Errorf("packet %d: gopacket serialises differently (-gopacket +encap):\n%s", i, diff)
				}
			}
		})
	}
}

// gopacketWire builds with gopacket what Encap must have sent for cfg. The
// TOS / traffic class and TTL are taken from out: the IPv4 golden tests
// check how they are chosen.
func gopacketWire(t *testing.T, cfg encap.Config, out, inner []byte, id uint16, seq uint32) []byte {
	t.Helper()
	proto := layers.IPProtocol(outerProto(cfg, inner[0]>>4 == 6))
	if cfg.UDP {
		proto = layers.IPProtocolUDP
	}
	var ls []gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	if cfg.Local.Is6() {
		ip := &layers.IPv6{Version: 6, TrafficClass: header.IPv6(out).TrafficClass(), NextHeader: proto,
			FlowLabel: header.IPv6(out).FlowLabel(),
			HopLimit:  header.IPv6(out).HopLimit(), SrcIP: net.IP(cfg.Local.AsSlice()), DstIP: net.IP(cfg.Remote.AsSlice())}
		ls, netLayer = append(ls, ip), ip
		if cfg.HasEncapLimit {
			ip.NextHeader = layers.IPProtocolIPv6Destination
			d := &layers.IPv6Destination{}
			d.NextHeader = proto
			d.Options = append(d.Options, &layers.IPv6DestinationOption{OptionType: 4, OptionLength: 1, OptionData: []byte{cfg.EncapLimit}},
				&layers.IPv6DestinationOption{OptionType: 1, OptionLength: 1, OptionData: []byte{0}}) // PadN
			ls = append(ls, d)
		}
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TOS: header.IPv4(out).TOS(), Id: id, TTL: header.IPv4(out).TTL(),
			Protocol: proto, SrcIP: net.IP(cfg.Local.AsSlice()), DstIP: net.IP(cfg.Remote.AsSlice())}
		if header.IPv4(out).DF() {
			ip.Flags = layers.IPv4DontFragment
		}
		ls, netLayer = append(ls, ip), ip
	}
	if cfg.UDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(cfg.SrcPort), DstPort: layers.UDPPort(cfg.DstPort)}
		if err := u.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	}
	if cfg.Mode == encap.ModeGRE {
		g := &layers.GRE{ChecksumPresent: cfg.Checksum, KeyPresent: cfg.HasKey, SeqPresent: cfg.Sequence, Key: cfg.Key & keyMask(cfg)}
		switch {
		case cfg.EtherType != 0:
			g.Protocol = layers.EthernetType(cfg.EtherType)
		case inner[0]>>4 == 6:
			g.Protocol = layers.EthernetTypeIPv6
		default:
			g.Protocol = layers.EthernetTypeIPv4
		}
		if cfg.Sequence {
			g.Seq = seq
		}
		ls = append(ls, g)
	}
	ls = append(ls, gopacket.Payload(inner))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	b := sb.Bytes()
	if cfg.UDP && !cfg.UDPChecksum {
		b[len(b)-len(inner)-cfg.Overhead()+ipLen(cfg)+header.UDPChecksum] = 0 // gopacket always computes one
		b[len(b)-len(inner)-cfg.Overhead()+ipLen(cfg)+header.UDPChecksum+1] = 0
	}
	return b
}

// outerProto is the protocol of cfg's packet carrying an inner IPv6 (v6)
// or IPv4 packet: the mode's, and for mode any the inner version's.
func outerProto(cfg encap.Config, v6 bool) uint8 {
	switch {
	case cfg.Mode != encap.ModeIP6Any:
		return uint8(cfg.Mode)
	case v6:
		return header.ProtoIPv6
	}
	return header.ProtoIPIP
}

func ipLen(cfg encap.Config) int {
	if cfg.Local.Is6() && cfg.HasEncapLimit {
		return header.IPv6HeaderLen + encap.EncapLimitLen
	}
	if cfg.Local.Is6() {
		return header.IPv6HeaderLen
	}
	return header.IPv4MinLen
}

// TestConfigOverhead: Config.Overhead, the count config uses for MTUs,
// agrees with what Encap prepends for every mode and option over both
// families, with and without UDP, and never exceeds HeadroomMax (nor
// Headroom over IPv4 without UDP).
func TestConfigOverhead(t *testing.T) {
	for _, base := range allConfigs() {
		for _, v6 := range []bool{false, true} {
			for _, udp := range []bool{false, true} {
				cfg := base
				if v6 {
					cfg.Local, cfg.Remote = local6, remote6
				}
				if udp {
					cfg.UDP, cfg.DstPort = true, header.UDPPortGRE
				}
				e, err := encap.New(cfg)
				if err != nil {
					t.Fatalf("%+v: %v", cfg, err)
				}
				inner := in4
				if cfg.Mode == encap.ModeIP6 {
					inner = in6
				}
				buf := append(make([]byte, encap.HeadroomMax), inner...)
				out, err := e.Encap(buf, encap.HeadroomMax)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(out) - len(inner); cfg.Overhead() != n || e.Overhead() != n || n > encap.HeadroomMax || !v6 && !udp && n > encap.Headroom {
					t.Errorf("%+v: Config.Overhead %d, Overhead %d, prepended %d", cfg, cfg.Overhead(), e.Overhead(), n)
				}
			}
		}
	}
}

func TestNewRejectsWire(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  encap.Config
	}{
		{"ipv6 local, ipv4 remote", encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote}},
		{"ipv4 local, ipv6 remote", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote6}},
		{"ipv4-mapped ipv6", encap.Config{Mode: encap.ModeGRE, Local: netip.AddrFrom16(local.As16()), Remote: netip.AddrFrom16(remote.As16())}},
		{"ipv6 remote equals local", encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: local6}},
		{"sit with a key", encap.Config{Mode: encap.ModeIP6, Local: local, Remote: remote, HasKey: true}},
		{"sit with a flow label", encap.Config{Mode: encap.ModeIP6, Local: local, Remote: remote, FlowLabel: 1}},
		{"encaplimit over ipv4", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, HasEncapLimit: true}},
		{"flow label over ipv4", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, FlowLabelInherit: true}},
		{"flow label over 20 bits", encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, FlowLabel: 1 << 20}},
		{"ip6ip6 with a key", encap.Config{Mode: encap.ModeIP6, Local: local6, Remote: remote6, HasKey: true}},
		{"zero mode over ipv6 (not any)", encap.Config{Local: local6, Remote: remote6}},
		{"any over ipv4", encap.Config{Mode: encap.ModeIP6Any, Local: local, Remote: remote}},
		{"any with a key", encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, HasKey: true}},
		{"any inside udp", encap.Config{Mode: encap.ModeIP6Any, Local: local6, Remote: remote6, UDP: true, DstPort: 5555}},
		{"udp without a port", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, UDP: true}},
		{"ethertype over ipip", encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, EtherType: header.EtherTypeTEB}},
	} {
		if _, err := encap.New(c.cfg); err == nil {
			t.Errorf("%s: New accepted %+v", c.name, c.cfg)
		}
	}
}

// TestFixedIPEtherType: a tunnel whose EtherType is IPv4 or IPv6 refuses
// the other version rather than mislabel it, and carries its own.
func TestFixedIPEtherType(t *testing.T) {
	for _, c := range []struct {
		etype      uint16
		ok, refuse []byte
	}{
		{header.EtherTypeIPv4, in4, in6},
		{header.EtherTypeIPv6, in6, in4},
	} {
		e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, EtherType: c.etype})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Encap(append(make([]byte, encap.Headroom), c.refuse...), encap.Headroom); !errors.Is(err, encap.ErrNotIP) {
			t.Errorf("EtherType %#04x, other version: %v, want ErrNotIP", c.etype, err)
		}
		out, err := e.Encap(append(make([]byte, encap.Headroom), c.ok...), encap.Headroom)
		if err != nil || header.GRE(out[20:]).Protocol() != c.etype {
			t.Errorf("EtherType %#04x: %v, protocol % x", c.etype, err, out[22:24])
		}
	}
}

// TestTooBigIPv6: the IPv6 payload length is 16 bits, as the IPv4 total
// length is, but it does not count the 40-byte header.
func TestTooBigIPv6(t *testing.T) {
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6})
	if err != nil {
		t.Fatal(err)
	}
	inner := innerIPv4(65535 - 4) // GRE 4 + inner: a payload of exactly 65535
	buf := append(make([]byte, encap.HeadroomMax), inner...)
	if _, err := e.Encap(buf, encap.HeadroomMax); err != nil {
		t.Errorf("payload of 65535: %v", err)
	}
	buf = append(buf, 0)
	if _, err := e.Encap(buf, encap.HeadroomMax); !errors.Is(err, encap.ErrTooBig) {
		t.Errorf("payload of 65536: %v, want ErrTooBig", err)
	}
}

// TestAllocsWire extends the allocation budget to IPv6, UDP (with its
// checksum) and a fixed EtherType.
func TestAllocsWire(t *testing.T) {
	for _, c := range wireCases {
		e, err := encap.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		buf := append(make([]byte, encap.HeadroomMax), c.inner...)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := e.Encap(buf, encap.HeadroomMax); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", c.name, n)
		}
	}
}

// TestUDPChecksumPartial: the field holds the pseudo-header sum, which a
// sender completing it as Linux does (the checksum of the UDP datagram
// from its header on, seed included) turns into the right checksum, the
// one gopacket computes; over IPv4 and IPv6, GRE and IPIP.
func TestUDPChecksumPartial(t *testing.T) {
	for _, c := range []encap.Config{
		{Mode: encap.ModeGRE, Local: local, Remote: remote, UDP: true, SrcPort: 0xc000, DstPort: 4754, HasKey: true, Key: 9, UDPChecksumPartial: true},
		{Mode: encap.ModeIPIP, Local: local, Remote: remote, UDP: true, SrcPort: 0xc000, DstPort: 5555, UDPChecksumPartial: true},
		{Mode: encap.ModeGRE, Local: local6, Remote: remote6, UDP: true, SrcPort: 1, DstPort: 4754, UDPChecksumPartial: true},
	} {
		e, err := encap.New(c)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Encap(append(make([]byte, encap.HeadroomMax), in4...), encap.HeadroomMax)
		if err != nil {
			t.Fatal(err)
		}
		u := header.UDP(out[ipLen(c):])
		if binary.BigEndian.Uint16(u[header.UDPChecksum:]) == 0 {
			t.Fatalf("%v: checksum field 0, which says none", c)
		}
		binary.BigEndian.PutUint16(u[header.UDPChecksum:], header.Checksum(u)) // what the kernel does with the seed
		full := c
		full.UDPChecksum, full.UDPChecksumPartial = true, false
		want := gopacketWire(t, full, out, in4, 1, 0)
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("%v: completed checksum differs (-gopacket +completed):\n%s", c, diff)
		}
	}
}

// TestInnerVersionPerMode: ip6ip6 and sit carry IPv6 only, ipip and ipip6
// IPv4 only; gre, ip6gre and mode any (IPv6 endpoints only) carry both;
// inside UDP too (but for mode any, which UDP cannot carry).
func TestInnerVersionPerMode(t *testing.T) {
	for _, c := range []struct {
		mode  encap.Mode
		inner []byte
		want  error
	}{
		{encap.ModeIP6, in4, encap.ErrIPv4OverIP6},
		{encap.ModeIP6, in6, nil},
		{encap.ModeIPIP, in6, encap.ErrIPv6OverIPIP},
		{encap.ModeIPIP, in4, nil},
		{encap.ModeGRE, in4, nil},
		{encap.ModeGRE, in6, nil},
		{encap.ModeIP6Any, in4, nil},
		{encap.ModeIP6Any, in6, nil},
	} {
		for _, ends := range [][2]netip.Addr{{local6, remote6}, {local, remote}} {
			for _, udp := range []bool{false, true} {
				if c.mode == encap.ModeIP6Any && (ends[0].Is4() || udp) {
					continue
				}
				e, err := encap.New(encap.Config{Mode: c.mode, Local: ends[0], Remote: ends[1], TTL: 64, UDP: udp, DstPort: 5555})
				if err != nil {
					t.Fatal(err)
				}
				buf := append(make([]byte, encap.HeadroomMax), c.inner...)
				if _, err := e.Encap(buf, encap.HeadroomMax); !errors.Is(err, c.want) {
					t.Errorf("%v over %v (UDP %v) carrying IPv%d: %v, want %v", c.mode, ends[0], udp, c.inner[0]>>4, err, c.want)
				}
			}
		}
	}
}

// nested is an IPv6 tunnel packet (ip6ip6 as Linux sends it) whose own
// encapsulation limit is limit.
func nested(limit byte) []byte {
	p := append([]byte{
		0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x3c, 0x40, // payload 48, destination options, hop limit 64
		0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
		0x29, 0x00, 0x04, 0x01, limit, 0x01, 0x01, 0x00, // next header IPv6; the limit
	}, in6Flow...)
	return p
}

// TestEncapLimitNested is RFC 2473 section 6.6 at a tunnel entry point: an
// inner packet carrying its own encapsulation limit goes out with that
// limit less one, whatever the tunnel's; one whose limit is 0 is refused,
// also by a tunnel that sends no limit; an IPv4 underlay (not RFC 2473)
// does not look.
func TestEncapLimitNested(t *testing.T) {
	ip6gre := encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4}
	none := ip6gre
	none.HasEncapLimit = false
	gre4 := encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 64}
	anyMode := ip6gre
	anyMode.Mode = encap.ModeIP6Any
	for _, tc := range []struct {
		name  string
		cfg   encap.Config
		inner []byte
		err   error
		limit int // the outer limit, -1 for none
	}{
		{"limit 2 becomes 1", ip6gre, nested(2), nil, 1},
		{"limit 200 becomes 199, over the tunnel's 4", ip6gre, nested(200), nil, 199},
		{"limit 0 refused", ip6gre, nested(0), encap.ErrEncapLimit, 0},
		{"limit 0 refused by a tunnel without a limit", none, nested(0), encap.ErrEncapLimit, 0},
		{"no limit inside: the tunnel's", ip6gre, in6Flow, nil, 4},
		{"over IPv4 nothing is looked at", gre4, nested(0), nil, -1},
		{"mode any: limit 2 becomes 1", anyMode, nested(2), nil, 1},
		{"mode any: limit 0 refused", anyMode, nested(0), encap.ErrEncapLimit, 0},
	} {
		e, err := encap.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		buf := append(make([]byte, encap.HeadroomMax), tc.inner...)
		out, err := e.Encap(buf, encap.HeadroomMax)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			if !bytes.Equal(buf[encap.HeadroomMax:], tc.inner) || bytes.Count(buf[:encap.HeadroomMax], []byte{0}) != encap.HeadroomMax {
				t.Errorf("%s: refused packet was written to", tc.name)
			}
			continue
		}
		got := -1
		if tc.cfg.HasEncapLimit {
			got = int(out[header.IPv6HeaderLen+4])
		}
		if got != tc.limit {
			t.Errorf("%s: outer limit %d, want %d", tc.name, got, tc.limit)
		}
	}
}

// TestFlowLabelAuto: with FlowLabelAuto, a packet that would carry flow
// label 0 gets one hashed from its flow, as Linux's IPv6 tunnels send:
// never 0, the same for every packet of a flow, different across flows
// (ports, addresses); a configured or inherited label is kept. An
// ip6gretap frame gets the label of the IP packet it carries.
func TestFlowLabelAuto(t *testing.T) {
	cfg := encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4, FlowLabelAuto: true}
	label := func(cfg encap.Config, inner []byte) uint32 {
		t.Helper()
		e, err := encap.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Encap(append(make([]byte, encap.HeadroomMax), inner...), encap.HeadroomMax)
		if err != nil {
			t.Fatal(err)
		}
		return header.IPv6(out).FlowLabel()
	}
	udpPort := func(p []byte, at int, port uint16) []byte {
		p = append([]byte(nil), p...)
		binary.BigEndian.PutUint16(p[at:], port)
		return p
	}
	a := label(cfg, in4)
	if a == 0 || label(cfg, in4) != a {
		t.Errorf("IPv4 flow: labels %#x and %#x, want one non-zero label", a, label(cfg, in4))
	}
	udp := append([]byte(nil), in4...)
	udp[9] = header.ProtoUDP // the same header as UDP: ports count
	u1, u2 := label(cfg, udpPort(udp, 20, 1000)), label(cfg, udpPort(udp, 20, 1001))
	if u1 == u2 || u1 == 0 || u2 == 0 || label(cfg, udpPort(udp, 20, 1000)) != u1 {
		t.Errorf("UDP source ports 1000 and 1001 give labels %#x and %#x", u1, u2)
	}
	other := append([]byte(nil), in4...)
	other[19] = 2 // another destination
	if b := label(cfg, other); b == a {
		t.Errorf("another destination gives the same label %#x", b)
	}
	six := label(cfg, in6)
	if six == 0 || six == a {
		t.Errorf("IPv6 flow: label %#x", six)
	}
	if l := label(cfg, in6Flow); l != 0x12345 && l == 0 {
		t.Errorf("no-next-header IPv6 packet: label %#x", l)
	}
	fixed := cfg
	fixed.FlowLabel = 0xabcde
	if l := label(fixed, in4); l != 0xabcde {
		t.Errorf("configured label: %#x", l)
	}
	inherit := cfg
	inherit.FlowLabelInherit = true
	if l := label(inherit, in6Flow); l != 0x12345 {
		t.Errorf("inherited label: %#x", l)
	}
	// ip6gretap: a frame's label is that of the IP packet it carries,
	// behind VLAN tags too; another frame's (ARP) hashes its header.
	tap := cfg
	tap.EtherType = header.EtherTypeTEB
	frame := func(ip []byte, tags ...uint16) []byte {
		f := append([]byte(nil), testpkt.Frame[:12]...)
		for _, tag := range tags {
			f = binary.BigEndian.AppendUint16(f, 0x8100)
			f = binary.BigEndian.AppendUint16(f, tag)
		}
		f = binary.BigEndian.AppendUint16(f, header.EtherTypeIPv4)
		return append(f, ip...)
	}
	if l := label(tap, frame(in4)); l != a {
		t.Errorf("frame carrying IPv4: label %#x, want the packet's own %#x", l, a)
	}
	if l := label(tap, frame(udpPort(udp, 20, 1000), 5, 6)); l != u1 {
		t.Errorf("double-tagged frame carrying UDP: label %#x, want %#x", l, u1)
	}
	if l := label(tap, frame(udpPort(udp, 20, 1001), 5)); l != u2 {
		t.Errorf("tagged frame, another UDP flow: label %#x, want %#x", l, u2)
	}
	arp := label(tap, testpkt.Frame)
	if arp == 0 || label(tap, testpkt.Frame) != arp {
		t.Errorf("ARP frame: labels %#x and %#x, want one non-zero label", arp, label(tap, testpkt.Frame))
	}
	if l := label(tap, frame(in4)[:20]); l == 0 {
		t.Error("a frame cut inside its IP header: label 0")
	}
	cfg.FlowLabelAuto = false
	if l := label(cfg, in4); l != 0 {
		t.Errorf("without FlowLabelAuto: %#x", l)
	}
}

// TestEncapIPOnEthernetTunnel: a gretap tunnel's keepalive is IPv4 in GRE
// 0x0800 (EncapIP) with the tunnel's key and the next sequence number of
// the one count its frames (0x6558) take theirs from.
func TestEncapIPOnEthernetTunnel(t *testing.T) {
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 255,
		HasKey: true, Key: 7, Sequence: true, EtherType: header.EtherTypeTEB})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		encap func([]byte, int) ([]byte, error)
		inner []byte
		want  uint16
	}{
		{e.Encap, frame, header.EtherTypeTEB},
		{e.EncapIP, in4, header.EtherTypeIPv4},
		{e.Encap, frame, header.EtherTypeTEB},
	} {
		out, err := c.encap(append(make([]byte, encap.Headroom), c.inner...), encap.Headroom)
		if err != nil {
			t.Fatal(err)
		}
		g := header.GRE(out[20:])
		if g.Protocol() != c.want || g.Key() != 7 || g.Seq() != uint32(i) || !bytes.Equal(out[20+g.Len():], c.inner) {
			t.Errorf("packet %d: protocol %#04x key %d seq %d, want %#04x, 7, %d", i, g.Protocol(), g.Key(), g.Seq(), c.want, i)
		}
	}
	if _, err := e.EncapIP(append(make([]byte, encap.Headroom), frame...), encap.Headroom); !errors.Is(err, encap.ErrNotIP) {
		t.Errorf("EncapIP of a frame: %v, want ErrNotIP", err)
	}
}
