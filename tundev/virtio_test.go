package tundev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/refsum"
	"golang.zx2c4.com/wireguard/tun"
)

const testOffset = 46 // like the engine's: outer headroom plus the virtio header

// superPacket is a TCP or UDP super-packet as the kernel hands it to a TUN
// device with offloads: the virtio header, then one IP header and one
// transport header for all of payload, whose checksum field holds only the
// pseudo-header sum (CHECKSUM_PARTIAL).
type superPacket struct {
	v6, udp bool
	mss     int
	payload []byte
	flags   uint8 // TCP flags, on the super-packet's one header
}

func (s superPacket) build(t testing.TB) []byte {
	t.Helper()
	var ip gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	if s.v6 {
		l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		ip, netLayer = l, l
	} else {
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0xfffe, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: net.IP{198, 51, 100, 1}, DstIP: net.IP{203, 0, 113, 9}}
		ip, netLayer = l, l
	}
	var l4 gopacket.SerializableLayer
	if s.udp {
		u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
		u.SetNetworkLayerForChecksum(netLayer)
		l4 = u
	} else {
		tcp := &layers.TCP{SrcPort: 4000, DstPort: 5000, Seq: 0xfffff000, Ack: 77, Window: 512,
			DataOffset: 8, Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}},
			ACK: true, PSH: s.flags&header.TCPFlagPSH != 0, FIN: s.flags&header.TCPFlagFIN != 0, CWR: s.flags&header.TCPFlagCWR != 0}
		tcp.SetNetworkLayerForChecksum(netLayer)
		l4 = tcp
	}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true}, ip, l4, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	pkt := sb.Bytes()
	ipLen, typ, csumOff := 20, header.VirtioNetGSOTCPv4, 16
	if s.v6 {
		ipLen, typ = 40, header.VirtioNetGSOTCPv6
	}
	if s.udp {
		typ, csumOff = header.VirtioNetGSOUDPL4, 6
	}
	// The kernel leaves the pseudo-header sum, uncomplemented, in the field.
	addrs := pkt[12:20]
	if s.v6 {
		addrs = pkt[8:40]
	}
	l4Len := len(pkt) - ipLen
	var sum uint32 = uint32(proto) + uint32(l4Len)
	for i := 0; i < len(addrs); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(addrs[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(pkt[ipLen+csumOff:], uint16(sum))
	hdr := make([]byte, VirtioHdrLen)
	hdr[0], hdr[1] = header.VirtioNetFlagNeedsCsum, byte(typ)
	binary.NativeEndian.PutUint16(hdr[2:], uint16(len(pkt)-len(s.payload)))
	binary.NativeEndian.PutUint16(hdr[4:], uint16(s.mss))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(ipLen))
	binary.NativeEndian.PutUint16(hdr[8:], uint16(csumOff))
	return append(hdr, pkt...)
}

func testBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, testOffset+size)
	}
	return bufs, make([]int, n)
}

// transportValid checks the TCP or UDP checksum of a segment the slow way:
// pseudo-header and segment summed by the reference checksum.
func transportValid(pkt []byte, v6 bool, proto byte) bool {
	ipLen, addrs := 20, pkt[12:20]
	if v6 {
		ipLen, addrs = 40, pkt[8:40]
	}
	l4 := pkt[ipLen:]
	ph := append(append([]byte{}, addrs...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	return refsum.RFC1071(append(ph, l4...)) == 0
}

func TestSplit(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		sp   superPacket
		want int // segments
	}{
		{"tcp4", superPacket{mss: 1448, payload: payload, flags: header.TCPFlagPSH | header.TCPFlagFIN | header.TCPFlagCWR}, 4},
		{"tcp6", superPacket{v6: true, mss: 1428, payload: payload, flags: header.TCPFlagPSH}, 4},
		{"tcp4 exact", superPacket{mss: 1000, payload: payload}, 5},
		{"udp4", superPacket{udp: true, mss: 1200, payload: payload}, 5},
		{"udp6", superPacket{v6: true, udp: true, mss: 1452, payload: payload[:2904]}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.sp.build(t)
			bufs, sizes := testBufs(8, 1500)
			n, err := split(in, bufs, sizes, testOffset)
			if err != nil || n != tc.want {
				t.Fatalf("split = %d, %v; want %d segments", n, err, tc.want)
			}
			var got []byte
			for i := 0; i < n; i++ {
				seg := bufs[i][testOffset : testOffset+sizes[i]]
				got = append(got, checkSegment(t, tc.sp, seg, i, i == n-1)...)
			}
			if !bytes.Equal(got, tc.sp.payload) {
				t.Fatalf("the segments' payloads (%d bytes) are not the super-packet's (%d bytes)", len(got), len(tc.sp.payload))
			}
		})
	}
}

// checkSegment decodes segment i of sp with gopacket, checks every field
// segmentation rewrites, and returns its payload.
func checkSegment(t *testing.T, sp superPacket, seg []byte, i int, last bool) []byte {
	t.Helper()
	first := layers.LayerTypeIPv4
	if sp.v6 {
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(seg, first, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("segment %d: %v", i, el.Error())
	}
	proto := byte(6)
	if sp.udp {
		proto = 17
	}
	if !transportValid(seg, sp.v6, proto) {
		t.Errorf("segment %d: bad transport checksum", i)
	}
	if ip4, ok := p.NetworkLayer().(*layers.IPv4); ok {
		if int(ip4.Length) != len(seg) || ip4.Id != 0xfffe+uint16(i) || refsum.RFC1071(seg[:20]) != 0 {
			t.Errorf("segment %d: IPv4 length %d (want %d), ID %#x (want %#x), header checksum valid %v",
				i, ip4.Length, len(seg), ip4.Id, 0xfffe+uint16(i), refsum.RFC1071(seg[:20]) == 0)
		}
	} else if ip6 := p.NetworkLayer().(*layers.IPv6); int(ip6.Length) != len(seg)-40 {
		t.Errorf("segment %d: IPv6 payload length %d, want %d", i, ip6.Length, len(seg)-40)
	}
	if sp.udp {
		u := p.TransportLayer().(*layers.UDP)
		if int(u.Length) != len(u.Payload)+8 {
			t.Errorf("segment %d: UDP length %d for %d bytes of payload", i, u.Length, len(u.Payload))
		}
		return u.Payload
	}
	tcp := p.TransportLayer().(*layers.TCP)
	if want := 0xfffff000 + uint32(i*sp.mss); tcp.Seq != want {
		t.Errorf("segment %d: seq %#x, want %#x", i, tcp.Seq, want)
	}
	wantFin, wantPsh, wantCwr := last && sp.flags&header.TCPFlagFIN != 0, last && sp.flags&header.TCPFlagPSH != 0, i == 0 && sp.flags&header.TCPFlagCWR != 0
	if tcp.FIN != wantFin || tcp.PSH != wantPsh || tcp.CWR != wantCwr || !tcp.ACK || tcp.Ack != 77 || len(tcp.Options) != 3 {
		t.Errorf("segment %d: FIN %v PSH %v CWR %v ACK %v ack %d, %d options; want FIN %v PSH %v CWR %v, ACK 77, 3 options",
			i, tcp.FIN, tcp.PSH, tcp.CWR, tcp.ACK, tcp.Ack, len(tcp.Options), wantFin, wantPsh, wantCwr)
	}
	return tcp.Payload
}

func TestSplitPlainPacket(t *testing.T) {
	sp := superPacket{udp: true, mss: 1400, payload: []byte("a datagram")}
	in := sp.build(t)
	in[1] = header.VirtioNetGSONone // the same packet, not to be segmented, checksum partial
	bufs, sizes := testBufs(1, 100)
	n, err := split(in, bufs, sizes, testOffset)
	if err != nil || n != 1 || sizes[0] != len(in)-VirtioHdrLen {
		t.Fatalf("split = %d, %v, size %d; want 1 packet of %d bytes", n, err, sizes[0], len(in)-VirtioHdrLen)
	}
	if !transportValid(bufs[0][testOffset:testOffset+sizes[0]], false, 17) {
		t.Fatal("the partial checksum was not completed")
	}
}

func TestSplitRefuses(t *testing.T) {
	payload := make([]byte, 3000)
	good := func() []byte { return superPacket{mss: 1000, payload: payload}.build(t) }
	for _, tc := range []struct {
		name  string
		in    func() []byte
		nbufs int
		size  int
		want  error
	}{
		{"short", func() []byte { return good()[:VirtioHdrLen-1] }, 4, 1500, errMalformed},
		{"unknown GSO type", func() []byte { b := good(); b[1] = 3; return b }, 4, 1500, errMalformed},
		{"TCPv6 type on IPv4", func() []byte { b := good(); b[1] = header.VirtioNetGSOTCPv6; return b }, 4, 1500, errMalformed},
		{"no segment size", func() []byte { b := good(); b[4], b[5] = 0, 0; return b }, 4, 1500, errMalformed},
		{"TCP header too short", func() []byte { b := good(); b[VirtioHdrLen+20+12] = 4 << 4; return b }, 4, 1500, errMalformed},
		{"transport beyond the packet", func() []byte { b := good(); b[6], b[7] = 0xff, 0xff; return b }, 4, 1500, errMalformed},
		{"checksum beyond the packet", func() []byte { b := good(); b[1] = header.VirtioNetGSONone; b[8], b[9] = 0xff, 0xff; return b }, 1, 4000, errMalformed},
		{"buffer too small", good, 4, 500, errMalformed},
		{"too many segments", good, 2, 1500, tun.ErrTooManySegments},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bufs, sizes := testBufs(tc.nbufs, tc.size)
			if _, err := split(tc.in(), bufs, sizes, testOffset); !errors.Is(err, tc.want) {
				t.Fatalf("split: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSplitAllocs(t *testing.T) {
	in := superPacket{mss: 1448, payload: make([]byte, 60000)}.build(t)
	bufs, sizes := testBufs(64, 1500)
	work := make([]byte, len(in))
	if a := testing.AllocsPerRun(100, func() {
		copy(work, in)
		if _, err := split(work, bufs, sizes, testOffset); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("split allocates %v times per super-packet", a)
	}
}

// FuzzSplit: whatever the kernel (or a bug) hands over, split never
// panics, and what it returns lies in the buffers, within their length.
func FuzzSplit(f *testing.F) {
	for _, sp := range []superPacket{
		{mss: 100, payload: make([]byte, 450)},
		{v6: true, mss: 64, payload: make([]byte, 300), flags: header.TCPFlagFIN},
		{udp: true, mss: 50, payload: make([]byte, 120)},
	} {
		f.Add(sp.build(f))
		f.Add(asFrame(sp.build(f), binary.BigEndian.AppendUint16(ethHeader(0x8100), header.EtherTypeIPv4)))
	}
	// splitFrame (a TAP's) is held to the same properties.
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, splitter := range []func([]byte, [][]byte, []int, int) (int, error){split, splitFrame} {
			bufs, sizes := testBufs(16, 256)
			n, err := splitter(bytes.Clone(in), bufs, sizes, testOffset)
			if n < 0 || n > len(bufs) {
				t.Fatalf("split returned %d packets for %d buffers", n, len(bufs))
			}
			for i := 0; i < n; i++ {
				if sizes[i] <= 0 || sizes[i] > len(bufs[i])-testOffset {
					t.Fatalf("packet %d of %d bytes in a %d-byte buffer (err %v)", i, sizes[i], len(bufs[i])-testOffset, err)
				}
			}
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	for _, mss := range []int{1448, 8948} {
		b.Run(fmt.Sprintf("tcp4/mss=%d", mss), func(b *testing.B) {
			in := superPacket{mss: mss, payload: make([]byte, 64000)}.build(b)
			bufs, sizes := testBufs(64, mss+100)
			work := make([]byte, len(in))
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				copy(work, in)
				if _, err := split(work, bufs, sizes, testOffset); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
