package encap_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/encap"
)

// seqPayload is n bytes counting up from 0, so that a misplaced byte shows.
func seqPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func fragBufs(n, size int) [][]byte {
	f := make([][]byte, n)
	for i := range f {
		f[i] = make([]byte, 0, size)
	}
	return f
}

func TestFragmentGolden(t *testing.T) {
	payload := seqPayload(80)
	pkt := append([]byte{
		0x45, 0x00, 0x00, 0x64, // version 4, IHL 5, TOS 0, total length 100
		0x12, 0x34, 0x00, 0x00, // ID 0x1234, no DF, offset 0
		0x40, 0x04, 0xe4, 0x5e, // TTL 64, IPIP, checksum
		0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
		0xc0, 0x00, 0x02, 0x02, // 192.0.2.2
	}, payload...)
	want := [][]byte{
		append([]byte{
			0x45, 0x00, 0x00, 0x44, // total length 68 = 20 + 48
			0x12, 0x34, 0x20, 0x00, // same ID, MF, offset 0
			0x40, 0x04, 0xc4, 0x7e, // checksum
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
		}, payload[:48]...), // (68-20) is a multiple of 8
		append([]byte{
			0x45, 0x00, 0x00, 0x34, // total length 52 = 20 + 32
			0x12, 0x34, 0x00, 0x06, // same ID, no MF, offset 6*8 = 48
			0x40, 0x04, 0xe4, 0x88,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
		}, payload[48:]...),
	}
	frags := fragBufs(4, 68)
	n, err := encap.Fragment(pkt, 68, frags)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, frags[:n]); diff != "" {
		t.Errorf("fragments (-want +got):\n%s", diff)
	}
}

// TestFragmentOptionsGolden checks RFC 791's rule for options: the first
// fragment has them all, later ones only those with the copied flag.
func TestFragmentOptionsGolden(t *testing.T) {
	payload := seqPayload(60)
	pkt := append([]byte{
		0x49, 0x00, 0x00, 0x60, // version 4, IHL 9 (36 bytes), total length 96
		0x12, 0x34, 0x00, 0x00, // ID 0x1234, no flags
		0x40, 0x04, 0x47, 0x8e, // TTL 64, IPIP, checksum
		0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
		0x01,                         // NOP (not copied)
		0x07, 0x07, 0x04, 0, 0, 0, 0, // record route, length 7 (not copied)
		0x83, 0x07, 0x04, 0xc0, 0x00, 0x02, 0x09, // loose source route 192.0.2.9 (copied flag set)
		0x00, // end of options
	}, payload...)
	want := [][]byte{
		append([]byte{
			0x49, 0x00, 0x00, 0x44, // IHL 9, total length 68 = 36 + 32
			0x12, 0x34, 0x20, 0x00, // MF, offset 0
			0x40, 0x04, 0x27, 0xaa,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x01, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0x83, 0x07, 0x04, 0xc0, 0x00, 0x02, 0x09, 0x00, // all options
		}, payload[:32]...),
		append([]byte{
			0x47, 0x00, 0x00, 0x38, // IHL 7 (28 bytes), total length 56 = 28 + 28
			0x12, 0x34, 0x00, 0x04, // no MF, offset 32
			0x40, 0x04, 0x51, 0xbd,
			0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
			0x83, 0x07, 0x04, 0xc0, 0x00, 0x02, 0x09, 0x00, // loose source route only, padded
		}, payload[32:]...),
	}
	frags := fragBufs(4, 68)
	n, err := encap.Fragment(pkt, 68, frags)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, frags[:n]); diff != "" {
		t.Errorf("fragments (-want +got):\n%s", diff)
	}
}

// outerPacket encapsulates a random inner IPv4 packet of n bytes without
// DF in a GRE tunnel with every option, so fragments carry real tunnel data.
func outerPacket(t testing.TB, n int, rng *rand.Rand) []byte {
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, TTL: 64,
		DF: encap.DFInherit, HasKey: true, Key: 9, Checksum: true, Sequence: true})
	if err != nil {
		t.Fatal(err)
	}
	inner := innerIPv4(n)
	inner[6] = 0 // clear DF
	for i := 20; i < n; i++ {
		inner[i] = byte(rng.Uint32())
	}
	fixIPv4Checksum(inner)
	buf := append(make([]byte, encap.Headroom), inner...)
	out, err := e.Encap(buf, encap.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFragmentProperties fragments packets of many sizes at many MTUs and
// checks each fragment on its own, then reassembles them by hand and with
// gopacket's defragmenter.
func TestFragmentProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	frags := fragBufs(64, 1500)
	gopacketChecked := 0
	defer func() {
		if gopacketChecked < 100 {
			t.Errorf("gopacket reassembled only %d packets", gopacketChecked)
		}
	}()
	for iter := 0; iter < 500; iter++ {
		pkt := outerPacket(t, 20+rng.IntN(3000), rng)
		mtu := 68 + rng.IntN(1500-68+1) // 68 is IPv4's minimum MTU
		n, err := encap.Fragment(pkt, mtu, frags)
		if err != nil {
			t.Fatalf("%d bytes, mtu %d: %v", len(pkt), mtu, err)
		}
		if len(pkt) <= mtu {
			if n != 1 || !bytes.Equal(frags[0], pkt) {
				t.Fatalf("a packet that fits must come back as it is")
			}
			continue
		}
		reassembled := make([]byte, len(pkt)-20)
		covered := 0
		defrag := ip4defrag.NewIPv4Defragmenter()
		var whole *layers.IPv4
		// gopacket refuses any fragment with fewer than 8 payload bytes,
		// even a last one, which RFC 791 and Linux accept: skip its
		// cross-check for those packets (the checks by hand still run).
		useGopacket := len(frags[n-1]) >= 28
		for i, f := range frags[:n] {
			if len(f) > mtu {
				t.Fatalf("fragment %d is %d bytes, mtu %d", i, len(f), mtu)
			}
			if rfc1071(f[:20]) != 0 {
				t.Fatalf("fragment %d: header checksum does not verify", i)
			}
			if int(f[2])<<8|int(f[3]) != len(f) {
				t.Fatalf("fragment %d: total length field %d, length %d", i, int(f[2])<<8|int(f[3]), len(f))
			}
			if !bytes.Equal(f[4:6], pkt[4:6]) || f[8] != pkt[8] || f[9] != pkt[9] || !bytes.Equal(f[12:20], pkt[12:20]) || f[1] != pkt[1] {
				t.Fatalf("fragment %d: ID, TTL, protocol, TOS or addresses differ from the packet", i)
			}
			ff := int(f[6])<<8 | int(f[7])
			off, mf, df := ff&0x1fff*8, ff&0x2000 != 0, ff&0x4000 != 0
			if df {
				t.Fatalf("fragment %d has DF", i)
			}
			if mf != (i < n-1) {
				t.Fatalf("fragment %d of %d: MF = %v", i, n, mf)
			}
			data := f[20:]
			if mf && len(data)%8 != 0 {
				t.Fatalf("fragment %d: %d payload bytes, not a multiple of 8", i, len(data))
			}
			if off != covered {
				t.Fatalf("fragment %d: offset %d, want %d (gap or overlap)", i, off, covered)
			}
			copy(reassembled[off:], data)
			covered += len(data)

			if !useGopacket {
				continue
			}
			var l layers.IPv4
			if err := l.DecodeFromBytes(f, gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("gopacket cannot decode fragment %d: %v", i, err)
			}
			out, err := defrag.DefragIPv4(&l)
			if err != nil {
				t.Fatalf("gopacket refuses fragment %d: %v", i, err)
			}
			if out != nil {
				whole = out
			}
		}
		if covered != len(pkt)-20 || !bytes.Equal(reassembled, pkt[20:]) {
			t.Fatalf("fragments do not reassemble to the original payload")
		}
		if !useGopacket {
			continue
		}
		gopacketChecked++
		if whole == nil {
			t.Fatalf("gopacket did not reassemble %d fragments", n)
		}
		if !bytes.Equal(whole.Payload, pkt[20:]) {
			t.Fatalf("gopacket reassembled a different payload")
		}
	}
}

func TestFragmentErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pkt := outerPacket(t, 1400, rng)
	df := append([]byte(nil), pkt...)
	df[6] |= 0x40
	fixIPv4Checksum(df)
	tiny := append([]byte(nil), pkt[:20]...) // a header alone: 20 bytes
	tiny[2], tiny[3] = 0, 20
	fixIPv4Checksum(tiny)
	badLen := append([]byte(nil), pkt...)
	badLen[3]++
	badOpt := append([]byte{0x46}, pkt[1:20]...)
	badOpt = append(badOpt, 0x83, 0x09, 0x04, 0x00) // option length 9 runs past the header
	badOpt = append(badOpt, pkt[20:]...)
	badOpt[2], badOpt[3] = byte(len(badOpt)>>8), byte(len(badOpt))
	for _, c := range []struct {
		name  string
		pkt   []byte
		mtu   int
		frags [][]byte
		want  error
	}{
		{"df set", df, 576, fragBufs(8, 576), encap.ErrFragmentDF},
		{"mtu below IPv4's 68", pkt, 67, fragBufs(400, 576), encap.ErrFragmentMTU},
		{"mtu 28 (divided by zero in the engine)", pkt, 28, fragBufs(400, 576), encap.ErrFragmentMTU},
		{"mtu 0", pkt, 0, fragBufs(400, 576), encap.ErrFragmentMTU},
		{"negative mtu", pkt, -1, fragBufs(400, 576), encap.ErrFragmentMTU},
		{"a packet that fits, mtu below 68", tiny, 20, fragBufs(1, 576), encap.ErrFragmentMTU},
		{"too few buffers", pkt, 576, fragBufs(2, 576), encap.ErrFragmentBuffer},
		{"buffers too small", pkt, 576, fragBufs(8, 100), encap.ErrFragmentBuffer},
		{"no buffer for a packet that fits", pkt, 1500, nil, encap.ErrFragmentBuffer},
		{"total length disagrees", badLen, 576, fragBufs(8, 576), encap.ErrNotIP},
		{"not IPv4", make([]byte, 100), 576, fragBufs(8, 576), encap.ErrNotIP},
		{"option runs past the header", badOpt, 576, fragBufs(8, 576), encap.ErrNotIP},
		{"empty", nil, 576, fragBufs(8, 576), encap.ErrNotIP},
	} {
		orig := append([]byte(nil), c.pkt...)
		if _, err := encap.Fragment(c.pkt, c.mtu, c.frags); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(orig, c.pkt) {
			t.Errorf("%s: Fragment modified its input", c.name)
		}
	}
	// The smallest MTU that works: IPv4's 68, 48 payload bytes a fragment.
	n, err := encap.Fragment(pkt, 68, fragBufs(200, 68))
	if err != nil || n != (len(pkt)-20+47)/48 {
		t.Errorf("mtu 68: %d fragments, %v; want %d", n, err, (len(pkt)-20+47)/48)
	}
}

// TestFragmentOfFragment splits a packet that is already a middle fragment:
// offsets continue from its own, and the last piece keeps its MF.
func TestFragmentOfFragment(t *testing.T) {
	pkt := append([]byte{
		0x45, 0x00, 0x00, 0x64, // total length 100
		0x12, 0x34, 0x20, 0x0a, // MF, offset 10*8 = 80
		0x40, 0x04, 0x00, 0x00,
		0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
	}, seqPayload(80)...)
	fixIPv4Checksum(pkt)
	frags := fragBufs(4, 68)
	n, err := encap.Fragment(pkt, 68, frags)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint16
	for _, f := range frags[:n] {
		got = append(got, uint16(f[6])<<8|uint16(f[7]))
	}
	want := []uint16{0x2000 | 10, 0x2000 | 16} // 80 and 128, both with MF
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flags and offsets (-want +got):\n%s", diff)
	}
}

// TestFragment6 splits an ip6gre packet as Linux's ip6_tnl would: the fixed
// header in every fragment, the fragment header after it, the
// encapsulation limit option and GRE in the first; gopacket decodes each
// fragment and their data put together is the packet's payload.
func TestFragment6(t *testing.T) {
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local6, Remote: remote6, TTL: 64, HasEncapLimit: true, EncapLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	inner := make([]byte, 1280)
	copy(inner, in6Flow)
	binary.BigEndian.PutUint16(inner[4:], 1240)
	buf := append(make([]byte, encap.HeadroomMax), inner...)
	pkt, err := e.Encap(buf, encap.HeadroomMax)
	if err != nil {
		t.Fatal(err)
	}
	frags := make([][]byte, 4)
	for i := range frags {
		frags[i] = make([]byte, 0, 1280)
	}
	n, err := encap.Fragment6(pkt, 1280, 0x01020304, frags)
	if err != nil || n != 2 {
		t.Fatalf("Fragment6 = %d, %v; want 2 fragments", n, err)
	}
	var data []byte
	for i, f := range frags[:n] {
		p := gopacket.NewPacket(f, layers.LayerTypeIPv6, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		fh, _ := p.Layer(layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment)
		if ip == nil || fh == nil {
			t.Fatalf("fragment %d: gopacket found IPv6 %v, fragment header %v", i, ip != nil, fh != nil)
		}
		if len(f) > 1280 || int(ip.Length) != len(f)-40 || ip.HopLimit != 64 || !bytes.Equal(f[8:40], pkt[8:40]) ||
			fh.NextHeader != layers.IPProtocolIPv6Destination || fh.Identification != 0x01020304 ||
			int(fh.FragmentOffset)*8 != len(data) || fh.MoreFragments != (i == 0) {
			t.Errorf("fragment %d: %+v %+v", i, ip, fh)
		}
		if i < n-1 && len(fh.Payload)%8 != 0 {
			t.Errorf("fragment %d carries %d bytes, not a multiple of 8", i, len(fh.Payload))
		}
		data = append(data, fh.Payload...)
	}
	if !bytes.Equal(data, pkt[40:]) {
		t.Error("the fragments' data is not the packet's payload")
	}
	if _, err := encap.Fragment6(pkt, 1279, 1, frags); !errors.Is(err, encap.ErrFragmentMTU) {
		t.Errorf("mtu 1279: %v, want ErrFragmentMTU", err)
	}
	if n := testing.AllocsPerRun(50, func() { encap.Fragment6(pkt, 1280, 1, frags) }); n != 0 {
		t.Errorf("Fragment6 allocates %.0f times", n)
	}
}
