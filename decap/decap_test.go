package decap_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gretun/gretun/decap"
)

// TestParseGolden parses packets laid out field by field and checks every
// field of the result.
func TestParseGolden(t *testing.T) {
	for _, c := range []struct {
		name  string
		pkt   []byte
		want  decap.Packet
		inner []byte // in4 when nil
	}{
		{
			name: "gre key csum seq",
			pkt: cat([]byte{
				0x45, 0x02, 0x00, 0x40, // version 4, IHL 5, TOS 0x02 (ECT(0)), total length 64
				0x00, 0x77, 0x40, 0x00, // ID 0x77, DF
				0x40, 0x2f, 0xb6, 0x12, // TTL 64, GRE, header checksum
				0xc0, 0x00, 0x02, 0x02, // source 192.0.2.2 (remote)
				0xc0, 0x00, 0x02, 0x01, // destination 192.0.2.1 (this host)
				0xb0, 0x00, 0x08, 0x00, // GRE: C, K, S, version 0; protocol IPv4
				0x47, 0xc5, 0x00, 0x00, // checksum, reserved1
				0x00, 0x00, 0x00, 0x2a, // key 42
				0x00, 0x00, 0x00, 0x10, // sequence number 16
			}, in4),
			want: decap.Packet{
				Proto: 47, Src: remoteAddr, Dst: localAddr, TOS: 0x02,
				GREFlags: 0xb000, Key: 42, Seq: 16, Type: 0x0800,
				Kind: decap.Data, Start: 36, End: 64,
			},
		},
		{
			// An ARP request in GRE 0x6558, as Linux's gretap sends it
			// with `key 7`: the frame is opaque to decap past its
			// Ethernet header, and ends where the outer packet does.
			name: "gretap key",
			pkt: cat([]byte{
				0x45, 0x00, 0x00, 0x46, // version 4, IHL 5, TOS 0, total length 70
				0x00, 0x00, 0x40, 0x00, // ID 0, DF
				0x40, 0x2f, 0xb6, 0x85, // TTL 64, GRE, header checksum
				0xc0, 0x00, 0x02, 0x02, // source 192.0.2.2 (remote)
				0xc0, 0x00, 0x02, 0x01, // destination 192.0.2.1 (this host)
				0x20, 0x00, 0x65, 0x58, // GRE: K, version 0; protocol 0x6558 (Transparent Ethernet Bridging)
				0x00, 0x00, 0x00, 0x07, // key 7
			}, frame),
			want: decap.Packet{
				Proto: 47, Src: remoteAddr, Dst: localAddr,
				GREFlags: 0x2000, Key: 7, Type: 0x6558,
				Kind: decap.Data, Start: 28, End: 70,
			},
			inner: frame,
		},
		{
			name: "ipip",
			pkt: cat([]byte{
				0x45, 0x00, 0x00, 0x30, // version 4, IHL 5, TOS 0, total length 48
				0x00, 0x00, 0x00, 0x00, // ID 0, no flags
				0x40, 0x04, 0xf6, 0xc6, // TTL 64, IPIP, header checksum
				0xc0, 0x00, 0x02, 0x02, // 192.0.2.2
				0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
			}, in4),
			want: decap.Packet{
				Proto: 4, Src: remoteAddr, Dst: localAddr, Type: 0x0800,
				Kind: decap.Data, Start: 20, End: 48,
			},
		},
		{
			// IPv6 in IPv4 (RFC 4213's 6in4), as Linux's sit sends it
			// with `ttl 255`, what tunnel brokers ask for.
			name: "sit",
			pkt: cat([]byte{
				0x45, 0x00, 0x00, 0x44, // version 4, IHL 5, TOS 0, total length 68
				0x00, 0x00, 0x40, 0x00, // ID 0, DF
				0xff, 0x29, 0xf7, 0x8c, // TTL 255, protocol 41 (IPv6), header checksum
				0xc0, 0x00, 0x02, 0x02, // 192.0.2.2
				0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
			}, in6),
			want: decap.Packet{
				Proto: 41, Src: remoteAddr, Dst: localAddr, Type: 0x86dd,
				Kind: decap.Data, Start: 20, End: 68,
			},
			inner: in6,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if rfc1071(c.pkt[:20]) != 0 {
				t.Fatal("golden header checksum is wrong: fix the test")
			}
			var p decap.Packet
			if r := decap.Parse(c.pkt, &p); r != decap.OK {
				t.Fatalf("Parse: %v", r)
			}
			if diff := cmp.Diff(c.want, p, addrCmp); diff != "" {
				t.Errorf("Packet (-want +got):\n%s", diff)
			}
			if c.inner == nil {
				c.inner = in4
			}
			if !bytes.Equal(c.pkt[p.Start:p.End], c.inner) {
				t.Errorf("inner range is not the inner packet")
			}
		})
	}
}

// parseCases has one or more cases per Reason that Parse returns.
var parseCases = []struct {
	name string
	pkt  []byte
	want decap.Reason
}{
	{"empty", nil, decap.Truncated},
	{"19 bytes", build(47, greHdr(0, 0x0800, 0, 0), in4)[:19], decap.Truncated},
	{"version 6", with(build(47, greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[0] = 0x65; return p }), decap.OuterVersion},
	{"version 0", make([]byte, 40), decap.OuterVersion},
	{"ihl 4", with(build(47, greHdr(0, 0x0800, 0, 0), in4), func(p []byte) []byte { p[0] = 0x44; return p }), decap.OuterHeaderLen},
	{"ihl 15 beyond a 40-byte packet", with(build(4, make([]byte, 20)), func(p []byte) []byte { p[0] = 0x4f; return p }), decap.OuterHeaderLen},
	{"total length beyond what was received", build(47, greHdr(0, 0x0800, 0, 0), in4)[:40], decap.OuterLength},
	{"total length below the header", with(build(4, in4), func(p []byte) []byte { p[2], p[3] = 0, 19; return fixIP(p) }), decap.OuterLength},
	{"more fragments", with(build(4, in4), func(p []byte) []byte { p[6] = 0x20; return fixIP(p) }), decap.OuterFragment},
	{"fragment offset", with(build(4, in4), func(p []byte) []byte { p[6], p[7] = 0, 1; return fixIP(p) }), decap.OuterFragment},
	{"udp", build(17, in4), decap.OuterProtocol},
	{"esp", build(50, in4), decap.OuterProtocol},
	{"gre with no gre header", build(47, []byte{0x00, 0x00}), decap.GRETruncated},
	{"gre K without the key", build(47, []byte{0x20, 0x00, 0x08, 0x00}), decap.GRETruncated},
	{"gre C K S, sequence cut", build(47, greHdr(0xb000, 0x0800, 1, 1)[:14]), decap.GRETruncated},
	{"gre version 2", build(47, greHdr(0x0002, 0x0800, 0, 0), in4), decap.GREVersion},
	{"gre version 7", build(47, greHdr(0x0007, 0x0800, 0, 0), in4), decap.GREVersion},
	{"pptp enhanced gre", build(47, []byte{
		0x30, 0x81, 0x88, 0x0b, // K, S, A, version 1; protocol PPP
		0x00, 0x04, 0x12, 0x34, // payload length 4, call ID
		0x00, 0x00, 0x00, 0x01, // sequence
		0xff, 0x03, 0x00, 0x21, // PPP
	}), decap.GREPPTP},
	{"gre routing present", build(47, greHdr(0x4000, 0x0800, 0, 0), in4), decap.GREReserved},
	{"gre strict source route", build(47, greHdr(0x0800, 0x0800, 0, 0), in4), decap.GREReserved},
	{"gre recursion bit 5", build(47, greHdr(0x0400, 0x0800, 0, 0), in4), decap.GREReserved},
	{"gre checksum wrong", with(build(47, greHdr(0x8000, 0x0800, 0, 0), in4), func(p []byte) []byte { p[24] ^= 1; return p }), decap.GREChecksum},
	{"gre checksum over a changed payload", with(build(47, greHdr(0xa000, 0x0800, 5, 0), in4), func(p []byte) []byte { p[len(p)-1] ^= 0x80; return p }), decap.GREChecksum},
	{"gre ethernet shorter than its header", build(47, greHdr(0, 0x6558, 0, 0), frame[:13]), decap.InnerTruncated},
	{"gre ppp", build(47, greHdr(0, 0x880b, 0, 0), in4), decap.GREProtocol},
	{"gre with no payload", build(47, greHdr(0, 0x0800, 0, 0)), decap.InnerTruncated},
	{"ipip with no payload", build(4), decap.InnerTruncated},
	{"inner ipv4 of 10 bytes", build(47, greHdr(0, 0x0800, 0, 0), in4[:10]), decap.InnerTruncated},
	{"inner ipv6 of 39 bytes", build(47, greHdr(0, 0x86dd, 0, 0), in6[:39]), decap.InnerTruncated},
	{"gre ipv4 type carrying ipv6", build(47, greHdr(0, 0x0800, 0, 0), in6), decap.InnerVersion},
	{"gre ipv6 type carrying ipv4", build(47, greHdr(0, 0x86dd, 0, 0), in4), decap.InnerVersion},
	{"ipip carrying ipv6", build(4, in6), decap.InnerVersion},
	{"sit carrying ipv4", build(41, in4), decap.InnerVersion},
	{"sit with no payload", build(41), decap.InnerTruncated},
	{"sit inner ipv6 of 39 bytes", build(41, in6[:39]), decap.InnerTruncated},
	{"sit inner ipv6 payload length beyond the packet", build(41, in6[:47]), decap.InnerLength},
	{"ipip carrying version 5", build(4, with(in4, func(p []byte) []byte { p[0] = 0x55; return p })), decap.InnerVersion},
	{"inner total length beyond the packet", build(4, in4[:27]), decap.InnerLength},
	{"inner ihl 4", build(4, with(in4, func(p []byte) []byte { p[0] = 0x44; return p })), decap.InnerLength},
	{"inner total length below its header", build(4, with(in4, func(p []byte) []byte { p[3] = 16; return p })), decap.InnerLength},
	{"inner ipv6 payload length beyond the packet", build(47, greHdr(0, 0x86dd, 0, 0), in6[:47]), decap.InnerLength},
	{"inner ipv6 jumbogram", build(47, greHdr(0, 0x86dd, 0, 0), with(in6, func(p []byte) []byte { p[4], p[5], p[6] = 0, 0, 0; return p })), decap.InnerLength},
	{"inner ttl 0", build(47, greHdr(0, 0x0800, 0, 0), with(in4, func(p []byte) []byte { p[8] = 0; return p })), decap.InnerTTLZero},
	{"ipip inner ttl 0", build(4, with(in4, func(p []byte) []byte { p[8] = 0; return p })), decap.InnerTTLZero},
}

func TestParseReasons(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if got := decap.Parse(c.pkt, &p); got != c.want {
				t.Errorf("Parse = %v, want %v", got, c.want)
			}
		})
	}
}

// TestParseAccepts lists packets that look odd but are valid.
func TestParseAccepts(t *testing.T) {
	for _, c := range []struct {
		name       string
		pkt        []byte
		start, end int
	}{
		// RFC 2784: bits 6-12 must be ignored on receipt.
		{"gre reserved bits 6-12 set", build(47, greHdr(0x03f8, 0x0800, 0, 0), in4), 24, 52},
		{"link-layer padding after the outer packet", append(build(4, in4), 0, 0, 0, 0, 0, 0), 20, 48},
		{"bytes after the inner packet", build(4, in4, []byte{1, 2, 3}), 20, 48},
		{"outer header with options", func() []byte {
			p := build(4, in4)
			p = cat(p[:20], []byte{0x01, 0x01, 0x01, 0x00}, p[20:]) // NOP NOP NOP EOL
			p[0] = 0x46
			binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
			return fixIP(p)
		}(), 24, 52},
		{"gre ipv6", build(47, greHdr(0, 0x86dd, 0, 0), in6), 24, 72},
		{"gre ipv6 with key", build(47, greHdr(0x2000, 0x86dd, 1, 0), in6), 28, 76},
		{"gre checksum 0xffff, the other one's-complement zero", func() []byte {
			// Find trailing bytes that make the checksum 0x0000, then
			// write it as 0xffff: the sum still verifies.
			for b := 0; b < 65536; b++ {
				p := build(47, greHdr(0x8000, 0x0800, 0, 0), in4, []byte{byte(b >> 8), byte(b)})
				if p[24] == 0 && p[25] == 0 {
					p[24], p[25] = 0xff, 0xff
					return p
				}
			}
			panic("no trailing bytes give checksum 0")
		}(), 28, 56},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if r := decap.Parse(c.pkt, &p); r != decap.OK {
				t.Fatalf("Parse = %v, want ok", r)
			}
			if p.Start != c.start || p.End != c.end {
				t.Errorf("inner at [%d:%d], want [%d:%d]", p.Start, p.End, c.start, c.end)
			}
		})
	}
}

func TestKind(t *testing.T) {
	// probe is a Cisco keepalive probe as the far end sends it: the inner
	// packet is GRE from us (outer destination) back to it (outer source).
	probe := cat([]byte{
		0x45, 0x00, 0x00, 0x18, // version 4, IHL 5, total length 24
		0x00, 0x00, 0x00, 0x00, // ID, flags
		0xff, 0x2f, 0x00, 0x00, // TTL 255, GRE, checksum (not checked by Parse)
	}, localIP[:], remoteIP[:], []byte{
		0x00, 0x00, 0x00, 0x00, // inner GRE: protocol 0 (keepalive)
	})
	notForUs := cat(probe[:12], remoteIP[:], localIP[:], probe[20:]) // addresses the other way round
	udp := with(probe, func(p []byte) []byte { p[9] = 17; return p })
	keyedProbe := ipv4Around(localIP, remoteIP, greHdr(0x2000, 0, 7, 0))
	// nested is the ping-pong of issue 12: inner GRE carrying IPv4 (a
	// probe the other way round, which carries a probe…) is no keepalive
	// probe; were it reflected, the peer would reflect the next level.
	nested := ipv4Around(localIP, remoteIP, greHdr(0, 0x0800, 0, 0), ipv4Around(remoteIP, localIP, greHdr(0, 0, 0, 0)))
	shortGRE := with(probe, func(p []byte) []byte { return fixLen(p[:22]) }) // 2 bytes of GRE
	keyMissing := ipv4Around(localIP, remoteIP, greHdr(0x2000, 0, 7, 0)[:4]) // K set, no key
	routing := ipv4Around(localIP, remoteIP, greHdr(0x4000, 0, 0, 0))        // RFC 1701 routing
	version1 := ipv4Around(localIP, remoteIP, greHdr(1, 0, 0, 0))            // PPTP
	keepalivePayload := []byte{0xde, 0xad, 0xbe, 0xef}
	for _, c := range []struct {
		name       string
		pkt        []byte
		want       decap.Kind
		start, end int
	}{
		{"ipip data", build(4, in4), decap.Data, 20, 48},
		{"gre ipv4 data", build(47, greHdr(0, 0x0800, 0, 0), in4), decap.Data, 24, 52},
		{"gre ipv6 data", build(47, greHdr(0, 0x86dd, 0, 0), in6), decap.Data, 24, 72},
		{"gre keepalive (protocol 0)", build(47, greHdr(0, 0, 0, 0), keepalivePayload), decap.Keepalive, 24, 28},
		{"gre keepalive with no payload", build(47, greHdr(0, 0, 0, 0)), decap.Keepalive, 24, 24},
		{"gre keepalive with key", build(47, greHdr(0x2000, 0, 9, 0), keepalivePayload), decap.Keepalive, 28, 32},
		{"reflect: inner gre keepalive from outer dst to outer src", build(47, greHdr(0, 0x0800, 0, 0), probe), decap.Reflect, 24, 48},
		{"reflect: inner keyed gre keepalive", build(47, greHdr(0, 0x0800, 0, 0), keyedProbe), decap.Reflect, 24, 52},
		{"inner gre carrying ipv4 is data, not a probe", build(47, greHdr(0, 0x0800, 0, 0), nested), decap.Data, 24, 72},
		{"inner gre header truncated is data", build(47, greHdr(0, 0x0800, 0, 0), shortGRE), decap.Data, 24, 46},
		{"inner gre key missing is data", build(47, greHdr(0, 0x0800, 0, 0), keyMissing), decap.Data, 24, 48},
		{"inner gre with routing is data", build(47, greHdr(0, 0x0800, 0, 0), routing), decap.Data, 24, 48},
		{"inner gre version 1 is data", build(47, greHdr(0, 0x0800, 0, 0), version1), decap.Data, 24, 48},
		{"inner gre between other addresses is data", build(47, greHdr(0, 0x0800, 0, 0), notForUs), decap.Data, 24, 48},
		{"inner udp from outer dst to outer src is data", build(47, greHdr(0, 0x0800, 0, 0), udp), decap.Data, 24, 48},
		{"ipip carrying a probe is data", build(4, probe), decap.Data, 20, 44},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if r := decap.Parse(c.pkt, &p); r != decap.OK {
				t.Fatalf("Parse = %v", r)
			}
			if p.Kind != c.want || p.Start != c.start || p.End != c.end {
				t.Errorf("kind %v at [%d:%d], want %v at [%d:%d]", p.Kind, p.Start, p.End, c.want, c.start, c.end)
			}
		})
	}
	if decap.Data.String() != "data" || decap.Keepalive.String() != "keepalive" || decap.Reflect.String() != "reflect" || decap.Kind(9).String() != "unknown" {
		t.Error("Kind names changed")
	}
}

// producedElsewhere lists the reasons neither Parse, Accept nor
// PrepareReflection return, and who does.
var producedElsewhere = map[decap.Reason]string{
	decap.NoTunnel:       "the engine's demultiplexer, when no tunnel matches",
	decap.InnerNotECT:    "the engine, when DecapECN reports false (see ecn_test.go)",
	decap.ReflectLimited: "the engine's per-tunnel reflection rate limit",
	decap.NoNeighbour:    "the engine's multipoint tunnels (tunnel.TestMultipointStranger)",
	decap.LearnFull:      "the engine's learned neighbour bound (tunnel.TestMultipointLearn)",
	decap.NotEthernet:    "the engine, for IP on a tunnel whose device carries Ethernet (gretap)",
	decap.NotIP:          "the engine, for an Ethernet frame on a tunnel whose device carries IP",
}

// ipv4Around is an IPv4 header src -> dst, protocol GRE, TTL 255, around
// the parts, with its length and checksum right.
func ipv4Around(src, dst [4]byte, parts ...[]byte) []byte {
	p := cat(append([][]byte{{0x45, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x2f, 0, 0}, src[:], dst[:]}, parts...)...)
	return fixLen(p)
}

// fixLen sets an IPv4 header's total length to len(p) and its checksum.
func fixLen(p []byte) []byte {
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	return fixIP(p)
}

// reflectCases are keepalive probes' inner packets (what Parse returns as
// Reflect) and what PrepareReflection makes of them.
var reflectCases = []struct {
	name    string
	inner   []byte
	want    decap.Reason
	wantTTL uint8
}{
	{"ttl 255 becomes 254", ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), decap.OK, 254},
	{"ttl 2 becomes 1", with(ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), func(p []byte) []byte { p[8] = 2; return fixIP(p) }), decap.OK, 1},
	{"ttl 1 expires", with(ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), func(p []byte) []byte { p[8] = 1; return fixIP(p) }), decap.ReflectTTL, 1},
	{"ttl 0 expires", with(ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), func(p []byte) []byte { p[8] = 0; return fixIP(p) }), decap.ReflectTTL, 0},
	{"options refused", fixLen(cat([]byte{0x46, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x2f, 0, 0}, localIP[:], remoteIP[:],
		[]byte{0x83, 0x03, 0x04, 0x00}, // loose source route, with which a sender would steer it
		greHdr(0, 0, 0, 0))), decap.ReflectHeader, 255},
	{"more fragments refused", with(ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), func(p []byte) []byte { p[6] = 0x20; return fixIP(p) }), decap.ReflectHeader, 255},
	{"fragment offset refused", with(ipv4Around(localIP, remoteIP, greHdr(0, 0, 0, 0)), func(p []byte) []byte { p[7] = 1; return fixIP(p) }), decap.ReflectHeader, 255},
	{"truncated", localIP[:], decap.InnerTruncated, 0},
}

// TestPrepareReflection: a reflected probe leaves as a forwarded packet
// would, TTL decremented and checksum right, or not at all.
func TestPrepareReflection(t *testing.T) {
	for _, c := range reflectCases {
		t.Run(c.name, func(t *testing.T) {
			p := append([]byte(nil), c.inner...)
			if r := decap.PrepareReflection(p); r != c.want {
				t.Fatalf("PrepareReflection = %v, want %v", r, c.want)
			}
			if c.want != decap.OK {
				if !bytes.Equal(p, c.inner) {
					t.Errorf("a refused packet was changed:\n got %x\nwant %x", p, c.inner)
				}
				return
			}
			if p[8] != c.wantTTL || rfc1071(p[:20]) != 0 {
				t.Errorf("TTL %d (want %d), header checksum valid %v", p[8], c.wantTTL, rfc1071(p[:20]) == 0)
			}
			if !bytes.Equal(p[:8], c.inner[:8]) || p[9] != c.inner[9] || !bytes.Equal(p[12:], c.inner[12:]) {
				t.Errorf("more than TTL and checksum changed:\n got %x\nwant %x", p, c.inner)
			}
		})
	}
}

// TestEveryReasonHasACase fails when a Reason is added without a test case.
func TestEveryReasonHasACase(t *testing.T) {
	covered := map[decap.Reason]bool{}
	for _, c := range parseCases {
		covered[c.want] = true
	}
	for _, c := range acceptCases {
		covered[c.want] = true
	}
	for _, c := range reflectCases {
		covered[c.want] = true
	}
	for _, c := range udpCases {
		covered[c.want] = true
	}
	for r := decap.Reason(1); int(r) < decap.NumReasons; r++ {
		_, elsewhere := producedElsewhere[r]
		if !covered[r] && !elsewhere {
			t.Errorf("reason %v (%d) has no test case", r, r)
		}
		if covered[r] && elsewhere {
			t.Errorf("reason %v is listed as produced elsewhere but decap returns it", r)
		}
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]decap.Reason{}
	for r := decap.Reason(0); int(r) < decap.NumReasons; r++ {
		s := r.String()
		if s == "unknown" || s == "" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d are both %q", o, r, s)
		}
		seen[s] = r
	}
	if decap.Reason(decap.NumReasons).String() != "unknown" {
		t.Error("a reason past the last one must be unknown")
	}
	for r := decap.Reason(0); int(r) < decap.NumReasons; r++ {
		wantCsum := r == decap.GREChecksum || r == decap.ChecksumMissing
		wantSeq := r == decap.SeqMissing || r == decap.OutOfSequence
		if r.IsChecksumError() != wantCsum || r.IsSequenceError() != wantSeq {
			t.Errorf("%v: checksum error %v, sequence error %v", r, r.IsChecksumError(), r.IsSequenceError())
		}
	}
}

// TestParseResetsPacket: a dropped packet leaves no stale fields behind.
func TestParseResetsPacket(t *testing.T) {
	var p decap.Packet
	if r := decap.Parse(build(47, greHdr(0x3000, 0x0800, 7, 9), in4), &p); r != decap.OK {
		t.Fatal(r)
	}
	if r := decap.Parse(nil, &p); r != decap.Truncated {
		t.Fatal(r)
	}
	if p != (decap.Packet{}) {
		t.Errorf("Packet after a drop: %+v", p)
	}
}

// TestParseDropKeepsDemuxFields: when the outer header was sound, a
// dropped packet still says which tunnel it was for, so the engine can
// count the drop there (ip -s tunnel's per-tunnel errors).
func TestParseDropKeepsDemuxFields(t *testing.T) {
	keyed := func(proto uint16, payload []byte) []byte {
		return build(47, greHdr(0xb000, proto, 42, 7), payload)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want decap.Reason
	}{
		{"gre checksum wrong", with(keyed(0x0800, in4), func(p []byte) []byte { p[24] ^= 1; return p }), decap.GREChecksum},
		{"gre protocol", keyed(0x880b, in4), decap.GREProtocol},
		{"gre ethernet truncated", keyed(0x6558, frame[:10]), decap.InnerTruncated},
		{"inner version", keyed(0x86dd, in4), decap.InnerVersion},
		{"inner ttl 0", keyed(0x0800, with(in4, func(p []byte) []byte { p[8] = 0; return p })), decap.InnerTTLZero},
		{"inner length", keyed(0x0800, in4[:24]), decap.InnerLength},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p decap.Packet
			if r := decap.Parse(c.pkt, &p); r != c.want {
				t.Fatalf("Parse = %v, want %v", r, c.want)
			}
			if p.Proto != 47 || p.Src != remoteAddr || p.Dst != localAddr || !p.HasKey() || p.Key != 42 {
				t.Errorf("demux fields lost on drop: %+v", p)
			}
		})
	}
	var p decap.Packet
	if r := decap.Parse(build(17, in4), &p); r != decap.OuterProtocol || p.Src != remoteAddr || p.Dst != localAddr || p.Proto != 17 {
		t.Errorf("outer protocol drop: %v %+v", r, p)
	}
}
