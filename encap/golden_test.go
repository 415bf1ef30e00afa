package encap_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/internal/testpkt"
)

// Inner packets, laid out field by field. They are payload to the tunnel;
// only their version, TOS / traffic class, DF and TTL / hop limit matter.
var (
	// in4 and in6 are the inner packets decap's tests use too.
	in4, in6 = testpkt.In4, testpkt.In6
	// in4NoDF is in4 without DF.
	in4NoDF = []byte{
		0x45, 0x00, 0x00, 0x1c, // version 4, IHL 5, TOS 0, total length 28
		0xab, 0xcd, 0x00, 0x00, // ID 0xabcd, no flags, fragment offset 0
		0x40, 0x01, 0x68, 0xdd, // TTL 64, ICMP, header checksum
		0xc6, 0x33, 0x64, 0x01, // source 198.51.100.1
		0xcb, 0x00, 0x71, 0x01, // destination 203.0.113.1
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00, // ICMP echo request
	}
	// in4ECT0, in4ECT1 and in4CE are in4 with ECN ECT(0), ECT(1) and CE.
	in4ECT0 = []byte{
		0x45, 0x02, 0x00, 0x1c, // TOS 0x02: DSCP 0, ECN ECT(0)
		0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x28, 0xdb,
		0xc6, 0x33, 0x64, 0x01, 0xcb, 0x00, 0x71, 0x01,
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
	}
	in4ECT1 = []byte{
		0x45, 0x01, 0x00, 0x1c, // TOS 0x01: DSCP 0, ECN ECT(1)
		0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x28, 0xdc,
		0xc6, 0x33, 0x64, 0x01, 0xcb, 0x00, 0x71, 0x01,
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
	}
	in4CE = []byte{
		0x45, 0x03, 0x00, 0x1c, // TOS 0x03: DSCP 0, ECN CE
		0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x28, 0xda,
		0xc6, 0x33, 0x64, 0x01, 0xcb, 0x00, 0x71, 0x01,
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
	}
	// in4EF is marked EF (DSCP 46), Not-ECT, TTL 17; in4EFCE is EF and CE.
	in4EF = []byte{
		0x45, 0xb8, 0x00, 0x1c, // TOS 0xb8: DSCP 46 (EF), Not-ECT
		0xab, 0xcd, 0x40, 0x00, // ID, DF
		0x11, 0x01, 0x57, 0x25, // TTL 17, ICMP, checksum
		0xc6, 0x33, 0x64, 0x01, 0xcb, 0x00, 0x71, 0x01,
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
	}
	in4EFCE = []byte{
		0x45, 0xbb, 0x00, 0x1c, // TOS 0xbb: DSCP 46 (EF), CE
		0xab, 0xcd, 0x40, 0x00, 0x11, 0x01, 0x57, 0x22,
		0xc6, 0x33, 0x64, 0x01, 0xcb, 0x00, 0x71, 0x01,
		0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
	}
)

var (
	local  = netip.MustParseAddr("192.0.2.1")
	remote = netip.MustParseAddr("192.0.2.2")
)

// goldenCases: each tunnel sends `before` packets, then the packet checked;
// want is the outer header Encap prepends (the inner packet follows unchanged).
var goldenCases = []struct {
	name   string
	cfg    encap.Config
	inner  []byte
	before int
	want   []byte
}{
	{
		name:  "ipip",
		cfg:   encap.Config{Mode: encap.ModeIPIP, TTL: 255},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x30, // version 4, IHL 5, TOS 0, total length 48 = 20 + 28
			0x00, 0x01, 0x40, 0x00, // ID 1 (the tunnel's first packet: 0 is never used), DF copied from inner
			0xff, 0x04, 0xf7, 0xc4, // TTL 255, protocol 4 (IPIP), header checksum
			0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
			0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
		},
	},
	{
		name:   "ipip third packet: identification increments",
		cfg:    encap.Config{Mode: encap.ModeIPIP, TTL: 255},
		inner:  in4,
		before: 2,
		want: []byte{
			0x45, 0x00, 0x00, 0x30,
			0x00, 0x03, 0x40, 0x00, // ID 3
			0xff, 0x04, 0xf7, 0xc2, // TTL 255, IPIP, checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
		},
	},
	{
		name:  "gre plain",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x34, // version 4, IHL 5, TOS 0, total length 52 = 20 + 4 + 28
			0x00, 0x01, 0x40, 0x00, // ID 1, DF
			0xff, 0x2f, 0xf7, 0x95, // TTL 255, protocol 47 (GRE), header checksum
			0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
			0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
			0x00, 0x00, 0x08, 0x00, // GRE: no C, K, S; version 0; protocol IPv4
		},
	},
	{
		name:  "gre key",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, HasKey: true, Key: 42},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x38, // total length 56 = 20 + 8 + 28
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x91,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x20, 0x00, 0x08, 0x00, // GRE: K; protocol IPv4
			0x00, 0x00, 0x00, 0x2a, // key 42
		},
	},
	{
		name:  "gre csum",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, Checksum: true},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x38, // total length 56
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x91,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x80, 0x00, 0x08, 0x00, // GRE: C; protocol IPv4
			0x77, 0xff, 0x00, 0x00, // checksum over GRE header and inner packet, reserved1 0
		},
	},
	{
		name:  "gre seq: the first packet carries 0",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, Sequence: true},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x38,
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x91,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x10, 0x00, 0x08, 0x00, // GRE: S; protocol IPv4
			0x00, 0x00, 0x00, 0x00, // sequence number 0
		},
	},
	{
		name:   "gre seq third packet: sequence and identification increment",
		cfg:    encap.Config{Mode: encap.ModeGRE, TTL: 255, Sequence: true},
		inner:  in4,
		before: 2,
		want: []byte{
			0x45, 0x00, 0x00, 0x38,
			0x00, 0x03, 0x40, 0x00, // ID 3
			0xff, 0x2f, 0xf7, 0x8f,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x10, 0x00, 0x08, 0x00, // GRE: S
			0x00, 0x00, 0x00, 0x02, // sequence number 2
		},
	},
	{
		name:  "gre key csum seq",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, HasKey: true, Key: 0xc0000201, Checksum: true, Sequence: true},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x40, // total length 64 = 20 + 16 + 28
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x89,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0xb0, 0x00, 0x08, 0x00, // GRE: C, K, S; protocol IPv4
			0x85, 0xfd, 0x00, 0x00, // checksum, reserved1
			0xc0, 0x00, 0x02, 0x01, // key 192.0.2.1 in dotted-quad form
			0x00, 0x00, 0x00, 0x00, // sequence number 0
		},
	},
	{
		name:  "ttl inherit",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 0},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x34,
			0x00, 0x01, 0x40, 0x00,
			0x40, 0x2f, 0xb6, 0x96, // TTL 64 copied from the inner packet
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "tos fixed: ECN bits of the setting ignored",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOS: 0x2b},
		inner: in4,
		want: []byte{
			0x45, 0x28, 0x00, 0x34, // TOS 0x28 (AF11) from the tunnel, ECN Not-ECT from the inner
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x6d,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "tos inherit",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOS: 0x28, TOSInherit: true},
		inner: in4EF,
		want: []byte{
			0x45, 0xb8, 0x00, 0x34, // TOS 0xb8 (EF) copied from the inner
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf6, 0xdd,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "tos inherit with CE",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOSInherit: true},
		inner: in4EFCE,
		want: []byte{
			0x45, 0xbb, 0x00, 0x34, // TOS 0xbb: EF and CE, both from the inner
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf6, 0xda,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "ecn ECT(0) copied",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOS: 0x28},
		inner: in4ECT0,
		want: []byte{
			0x45, 0x2a, 0x00, 0x34, // TOS 0x28 from the tunnel | ECT(0) from the inner
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x6b,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "ecn ECT(1) copied",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOS: 0x28},
		inner: in4ECT1,
		want: []byte{
			0x45, 0x29, 0x00, 0x34, // TOS 0x28 | ECT(1)
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x6c,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "ecn CE copied (RFC 6040 normal mode)",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, TOS: 0x28},
		inner: in4CE,
		want: []byte{
			0x45, 0x2b, 0x00, 0x34, // TOS 0x28 | CE: normal mode copies CE too
			0x00, 0x01, 0x40, 0x00,
			0xff, 0x2f, 0xf7, 0x6a,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "df inherit, inner without DF",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, DF: encap.DFInherit},
		inner: in4NoDF,
		want: []byte{
			0x45, 0x00, 0x00, 0x34,
			0x00, 0x01, 0x00, 0x00, // ID 1, no DF: the inner has none
			0xff, 0x2f, 0x37, 0x96,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "df set (pmtudisc), inner without DF",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, DF: encap.DFSet},
		inner: in4NoDF,
		want: []byte{
			0x45, 0x00, 0x00, 0x34,
			0x00, 0x01, 0x40, 0x00, // DF set by the tunnel
			0xff, 0x2f, 0xf7, 0x95,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "df clear (ignore-df), inner with DF",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, DF: encap.DFClear},
		inner: in4,
		want: []byte{
			0x45, 0x00, 0x00, 0x34,
			0x00, 0x01, 0x00, 0x00, // DF clear despite the inner's
			0xff, 0x2f, 0x37, 0x96,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x08, 0x00,
		},
	},
	{
		name:  "ipv6 inner, ttl and tos inherited",
		cfg:   encap.Config{Mode: encap.ModeGRE, TOSInherit: true},
		inner: in6,
		want: []byte{
			0x45, 0xb9, 0x00, 0x48, // TOS 0xb9 = traffic class; total length 72 = 20 + 4 + 48
			0x00, 0x01, 0x00, 0x00, // DF inherit: IPv6 has no DF, so clear
			0x21, 0x2f, 0x14, 0xca, // TTL 33 = hop limit, GRE, checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x00, 0x00, 0x86, 0xdd, // GRE: protocol IPv6
		},
	},
	{
		name:  "ipv6 inner, key csum seq, df set",
		cfg:   encap.Config{Mode: encap.ModeGRE, TTL: 255, DF: encap.DFSet, HasKey: true, Key: 7, Checksum: true, Sequence: true},
		inner: in6,
		want: []byte{
			0x45, 0x01, 0x00, 0x54, // TOS 0 | ECT(1) from the traffic class; total length 84
			0x00, 0x01, 0x40, 0x00, // DF
			0xff, 0x2f, 0xf7, 0x74,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0xb0, 0x00, 0x86, 0xdd, // GRE: C, K, S; protocol IPv6
			0xcc, 0x32, 0x00, 0x00, // checksum, reserved1
			0x00, 0x00, 0x00, 0x07, // key 7
			0x00, 0x00, 0x00, 0x00, // sequence number 0
		},
	},
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			if got := rfc1071(c.want[:20]); got != 0 {
				t.Fatalf("golden outer IPv4 header does not verify (%#04x): fix the test", got)
			}
			cfg := c.cfg
			cfg.Local, cfg.Remote = local, remote
			e, err := encap.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if e.Overhead() != len(c.want) {
				t.Fatalf("Overhead() = %d, want %d", e.Overhead(), len(c.want))
			}
			for i := 0; i <= c.before; i++ {
				buf := make([]byte, encap.Headroom+len(c.inner))
				for j := range buf[:encap.Headroom] {
					buf[j] = 0xee // headroom Encap must not touch
				}
				copy(buf[encap.Headroom:], c.inner)
				out, err := e.Encap(buf, encap.Headroom)
				if err != nil {
					t.Fatal(err)
				}
				if i < c.before {
					continue
				}
				start := encap.Headroom - len(c.want)
				if &out[0] != &buf[start] || len(out) != len(buf)-start {
					t.Fatalf("Encap did not return buf[%d:] in place", start)
				}
				if diff := cmp.Diff(c.want, out[:len(c.want)]); diff != "" {
					t.Errorf("outer header (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(c.inner, out[len(c.want):]); diff != "" {
					t.Errorf("inner packet changed (-want +got):\n%s", diff)
				}
				for j, v := range buf[:start] {
					if v != 0xee {
						t.Fatalf("Encap wrote byte %d, before the outer header", j)
					}
				}
			}
		})
	}
}

func TestEncapErrors(t *testing.T) {
	ipip, err := encap.New(encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, TTL: 64})
	if err != nil {
		t.Fatal(err)
	}
	gre, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 64, HasKey: true, Checksum: true, Sequence: true})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, encap.Headroom+65535-20)
	copy(big[encap.Headroom:], in4)
	cases := []struct {
		name  string
		e     *encap.Encapsulator
		inner []byte
		off   int // 0 means encap.Headroom
		want  error
	}{
		{"ipv6 over ipip is refused", ipip, in6, 0, encap.ErrIPv6OverIPIP},
		{"empty inner", gre, nil, 0, encap.ErrNotIP},
		{"version 5", gre, append([]byte{0x55}, in4[1:]...), 0, encap.ErrNotIP},
		{"version 0", ipip, make([]byte, 40), 0, encap.ErrNotIP},
		{"ipv4 shorter than a header", gre, in4[:19], 0, encap.ErrNotIP},
		{"ipv6 shorter than a header", gre, in6[:39], 0, encap.ErrNotIP},
		{"headroom too small for gre with all options", gre, in4, 35, encap.ErrHeadroom},
		{"headroom too small for ipip", ipip, in4, 19, encap.ErrHeadroom},
		{"negative offset", ipip, in4, -1, encap.ErrHeadroom},
		{"outer longer than 65535", gre, big[encap.Headroom:], 0, encap.ErrTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			off := c.off
			if off == 0 {
				off = encap.Headroom
			}
			var buf []byte
			if off >= 0 {
				buf = make([]byte, off+len(c.inner))
				copy(buf[off:], c.inner)
			} else {
				buf = append([]byte(nil), c.inner...)
			}
			orig := append([]byte(nil), buf...)
			out, err := c.e.Encap(buf, off)
			if !errors.Is(err, c.want) {
				t.Fatalf("Encap error = %v, want %v", err, c.want)
			}
			if out != nil {
				t.Errorf("Encap returned %d bytes with its error", len(out))
			}
			if diff := cmp.Diff(orig, buf); diff != "" {
				t.Errorf("Encap changed the buffer on error (-before +after):\n%s", diff)
			}
		})
	}
	// An offset past the end of the buffer is a caller bug, reported, not a panic.
	if _, err := gre.Encap(make([]byte, 40), 41); !errors.Is(err, encap.ErrHeadroom) {
		t.Errorf("offset past the end: %v, want ErrHeadroom", err)
	}
}

func TestNewRejects(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	for _, c := range []struct {
		name string
		cfg  encap.Config
	}{
		{"unknown mode", encap.Config{Mode: 50, Local: local, Remote: remote}},
		{"zero mode", encap.Config{Local: local, Remote: remote}},
		{"ipv6 local", encap.Config{Mode: encap.ModeGRE, Local: v6, Remote: remote}},
		{"missing remote", encap.Config{Mode: encap.ModeGRE, Local: local}},
		{"remote equals local", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: local}},
		{"ipip with key", encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, HasKey: true}},
		{"ipip with csum", encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, Checksum: true}},
		{"ipip with seq", encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, Sequence: true}},
		{"unknown df policy", encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, DF: 3}},
	} {
		if _, err := encap.New(c.cfg); err == nil {
			t.Errorf("%s: New accepted %+v", c.name, c.cfg)
		}
	}
}

func TestOverheadAndHeadroom(t *testing.T) {
	if encap.Headroom != 36 {
		t.Errorf("Headroom = %d, want 36 (IPv4 20 + GRE 4 + csum 4 + key 4 + seq 4)", encap.Headroom)
	}
	for _, c := range []struct {
		cfg  encap.Config
		want int
	}{
		{encap.Config{Mode: encap.ModeIPIP}, 20},
		{encap.Config{Mode: encap.ModeGRE}, 24},
		{encap.Config{Mode: encap.ModeGRE, HasKey: true}, 28},
		{encap.Config{Mode: encap.ModeGRE, Checksum: true, Sequence: true}, 32},
		{encap.Config{Mode: encap.ModeGRE, HasKey: true, Checksum: true, Sequence: true}, 36},
	} {
		c.cfg.Local, c.cfg.Remote = local, remote
		e, err := encap.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if e.Overhead() != c.want {
			t.Errorf("%+v: Overhead() = %d, want %d", c.cfg, e.Overhead(), c.want)
		}
		if e.Overhead() > encap.Headroom {
			t.Errorf("Overhead %d exceeds Headroom", e.Overhead())
		}
	}
}

// TestOverheadMultipoint: a configuration without a remote (a multipoint
// tunnel's, each neighbour's encapsulator adding its own) counts the outer
// header of its local address's family.
func TestOverheadMultipoint(t *testing.T) {
	for _, c := range []struct {
		cfg  encap.Config
		want int
	}{
		{encap.Config{Mode: encap.ModeGRE, Local: local, HasKey: true}, 28},
		{encap.Config{Mode: encap.ModeGRE, Local: netip.MustParseAddr("2001:db8::1"), HasKey: true}, 48},
		{encap.Config{Mode: encap.ModeGRE, Local: netip.MustParseAddr("2001:db8::1"), HasKey: true, HasEncapLimit: true}, 56},
		{encap.Config{Mode: encap.ModeGRE, Local: netip.MustParseAddr("2001:db8::1"), UDP: true}, 52},
	} {
		if got := c.cfg.Overhead(); got != c.want {
			t.Errorf("%+v: Overhead() = %d, want %d", c.cfg, got, c.want)
		}
	}
}

// TestIdentificationWraps sends 70000 packets: the identification counts
// up by one from 1 and wraps from 0xffff to 1, never using 0 (a raw socket
// would replace it, breaking outer fragments), the sequence number keeps
// counting from 0, and every header checksum (computed incrementally)
// verifies.
func TestIdentificationWraps(t *testing.T) {
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 0, TOSInherit: true, Sequence: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, encap.Headroom), in4EFCE...)
	for i := 0; i < 70000; i++ {
		out, err := e.Encap(buf, encap.Headroom)
		if err != nil {
			t.Fatal(err)
		}
		if id := int(out[4])<<8 | int(out[5]); id != i%0xffff+1 {
			t.Fatalf("packet %d: identification %d", i, id)
		}
		if seq := int(out[24])<<24 | int(out[25])<<16 | int(out[26])<<8 | int(out[27]); seq != i {
			t.Fatalf("packet %d: sequence number %d", i, seq)
		}
		if rfc1071(out[:20]) != 0 {
			t.Fatalf("packet %d: header checksum does not verify", i)
		}
	}
}

// TestContinue: an encapsulator built for a changed configuration carries
// on the old one's identification and sequence number (a peer with iseq
// would drop a restart at 0), also across a configuration without oseq in
// between, and its headers are those of the new configuration.
func TestContinue(t *testing.T) {
	send := func(e *encap.Encapsulator) (id uint16, seq uint32, ttl uint8) {
		t.Helper()
		buf := append(make([]byte, encap.Headroom), in4...)
		out, err := e.Encap(buf, encap.Headroom)
		if err != nil {
			t.Fatal(err)
		}
		if rfc1071(out[:20]) != 0 {
			t.Fatal("header checksum does not verify")
		}
		id, ttl = uint16(out[4])<<8|uint16(out[5]), out[8]
		if e.Config().Sequence {
			seq = uint32(out[24])<<24 | uint32(out[25])<<16 | uint32(out[26])<<8 | uint32(out[27])
		}
		return id, seq, ttl
	}
	mk := func(c encap.Config) *encap.Encapsulator {
		t.Helper()
		c.Mode, c.Local, c.Remote = encap.ModeGRE, local, remote
		e, err := encap.New(c)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	old := mk(encap.Config{TTL: 255, Sequence: true})
	for range 41 {
		send(old)
	}
	changed := mk(encap.Config{TTL: 64, Sequence: true})
	changed.Continue(old)
	if id, seq, ttl := send(changed); id != 42 || seq != 41 || ttl != 64 {
		t.Errorf("after a ttl change: id %d seq %d ttl %d, want id 42 seq 41 ttl 64", id, seq, ttl)
	}
	noSeq := mk(encap.Config{TTL: 64})
	noSeq.Continue(changed)
	send(noSeq)
	again := mk(encap.Config{TTL: 64, Sequence: true})
	again.Continue(noSeq)
	if id, seq, _ := send(again); id != 44 || seq != 42 {
		t.Errorf("oseq off and on again: id %d seq %d, want id 44 seq 42", id, seq)
	}
}
