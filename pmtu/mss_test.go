package pmtu

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TCP options, built the way they appear on the wire.
var (
	oMSS1460 = layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}
	oSACKOK  = layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}
	oTS      = layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0x12, 0x34, 0, 0, 0, 0}}
	oNOP     = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	oWS      = layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}
	oEOL     = layers.TCPOption{OptionType: layers.TCPOptionKindEndList}
)

func mssOpt(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(v >> 8), byte(v)}}
}

// syn builds a TCP segment with the given flags and options, carrying
// payload bytes, over IPv4 or IPv6, with correct checksums.
func syn(t testing.TB, v6, ack bool, payload int, opts ...layers.TCPOption) []byte {
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: 0x01020304, SYN: true, ACK: ack, Window: 64240, Options: opts}
	if ack {
		tcp.Ack = 0x0a0b0c0d
	}
	if v6 {
		ip := ip6(host6A, host6B, layers.IPProtocolTCP)
		tcp.SetNetworkLayerForChecksum(ip)
		return serialize(t, ip, tcp, fill(payload))
	}
	ip := ip4(host4A, host4B, layers.IPProtocolTCP, true)
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp, fill(payload))
}

// decodeTCP decodes pkt with gopacket and returns its network and TCP
// layers.
func decodeTCP(t *testing.T, pkt []byte) (gopacket.NetworkLayer, *layers.TCP) {
	t.Helper()
	first := layers.LayerTypeIPv4
	if pkt[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(pkt, first, gopacket.Default)
	if e := p.ErrorLayer(); e != nil {
		t.Fatalf("gopacket: %v", e.Error())
	}
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		t.Fatalf("gopacket found no TCP in %x", pkt)
	}
	return p.NetworkLayer(), tcp
}

// mssOf returns the MSS option values gopacket finds.
func mssOf(tcp *layers.TCP) []uint16 {
	var v []uint16
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2 {
			v = append(v, binary.BigEndian.Uint16(o.OptionData))
		}
	}
	return v
}

// checkTCPChecksum verifies the TCP checksum of pkt twice: against
// gopacket's computation and by summing the segment with its pseudo
// header.
func checkTCPChecksum(t *testing.T, pkt []byte) {
	t.Helper()
	netl, tcp := decodeTCP(t, pkt)
	got := tcp.Checksum
	if err := tcp.SetNetworkLayerForChecksum(netl); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	if want := binary.BigEndian.Uint16(buf.Bytes()[16:]); got != want {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", got, want)
	}
	src, _ := netip.AddrFromSlice(netl.NetworkFlow().Src().Raw())
	dst, _ := netip.AddrFromSlice(netl.NetworkFlow().Dst().Raw())
	seg := append(append([]byte(nil), tcp.Contents...), tcp.Payload...)
	if c := rfc1071(pseudo(src, dst, 6, len(seg)), seg); c != 0 {
		t.Errorf("TCP segment does not verify: %#04x", c)
	}
}

func TestClampMSS(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		mss  uint16
		want []uint16 // MSS values after
	}{
		// Linux's SYN: MSS, SACK permitted, timestamps, NOP, window scale.
		{"linux order", syn(t, false, false, 0, oMSS1460, oSACKOK, oTS, oNOP, oWS), 1436, []uint16{1436}},
		{"syn-ack", syn(t, false, true, 0, oMSS1460, oNOP, oNOP, oSACKOK, oNOP, oWS), 1436, []uint16{1436}},
		// Value at TCP offset 23: it straddles two checksum words.
		{"odd offset after NOP", syn(t, false, false, 0, oNOP, oMSS1460, oNOP, oNOP, oNOP), 1436, []uint16{1436}},
		{"after timestamps", syn(t, false, false, 0, oNOP, oNOP, oTS, oMSS1460), 1400, []uint16{1400}},
		{"odd offset last", syn(t, false, false, 0, oSACKOK, oNOP, oMSS1460, oNOP, oNOP, oNOP), 1200, []uint16{1200}},
		{"with data", syn(t, false, false, 33, oMSS1460), 1436, []uint16{1436}},
		{"odd offset with odd data", syn(t, false, false, 33, oNOP, oMSS1460, oNOP, oNOP, oNOP), 1436, []uint16{1436}},
		{"checksum corner: all ones", syn(t, false, false, 0, mssOpt(0xffff)), 0x0001, []uint16{1}},
		{"ipv6", syn(t, true, false, 0, oMSS1460, oSACKOK, oTS, oNOP, oWS), 1416, []uint16{1416}},
		{"ipv6 odd offset", syn(t, true, true, 0, oNOP, oMSS1460, oNOP, oNOP, oNOP), 1416, []uint16{1416}},
		{"ipv6 after hop-by-hop", synAfterHopByHop(t), 1416, []uint16{1416}},
		{"ipv4 with options", synWithIPOptions(t), 1436, []uint16{1436}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := append([]byte(nil), tc.pkt...)
			if !ClampMSS(pkt, tc.mss) {
				t.Fatalf("ClampMSS reported no change")
			}
			_, tcp := decodeTCP(t, pkt)
			if got := mssOf(tcp); !equal(got, tc.want) {
				t.Errorf("MSS after = %v, want %v", got, tc.want)
			}
			checkTCPChecksum(t, pkt)
			if n := differing(tc.pkt, pkt); n > 4 {
				t.Errorf("%d bytes changed, want at most 4", n)
			}
			// Clamping again changes nothing.
			again := append([]byte(nil), pkt...)
			if ClampMSS(again, tc.mss) || !bytes.Equal(again, pkt) {
				t.Errorf("second ClampMSS changed the packet")
			}
		})
	}
}

func TestClampMSSLeavesAlone(t *testing.T) {
	ack := syn(t, false, true, 0, oMSS1460)
	ack[20+13] = 0x10 // ACK only; the checksum no longer matters
	rst := syn(t, false, false, 0, oMSS1460)
	rst[20+13] = 0x04
	frag := syn(t, false, false, 0, oMSS1460)
	binary.BigEndian.PutUint16(frag[6:], 0x2000|1) // offset 8 bytes: not the first fragment
	udp := udp4(t, 100, true)
	badOff := syn(t, false, false, 0, oMSS1460)
	badOff[20+12] = 0xf0 // data offset 60, past the end
	shortOff := syn(t, false, false, 0, oMSS1460)
	shortOff[20+12] = 0x40 // data offset 16
	truncated := syn(t, false, false, 0, oMSS1460)
	truncated = truncated[:len(truncated)-2]
	mssLen5 := syn(t, false, false, 0, layers.TCPOption{OptionType: 2, OptionLength: 5, OptionData: []byte{5, 0xb4, 0}}, oNOP, oNOP, oNOP)
	overrun := syn(t, false, false, 0, oNOP, oNOP, oSACKOK, oMSS1460)
	overrun[20+20+2+1] = 9 // SACK permitted claims 9 bytes: past the header
	zeroLen := syn(t, false, false, 0, oSACKOK, oMSS1460, oNOP, oNOP)
	zeroLen[20+20+1] = 0 // an option of length 0 would loop forever
	frag6 := serialize(t, ip6(host6A, host6B, layers.IPProtocolIPv6Fragment), frag6Header(layers.IPProtocolTCP, 1, false),
		gopacket.Payload(syn(t, true, false, 0, oMSS1460)[40:]))

	for _, tc := range []struct {
		name string
		pkt  []byte
		mss  uint16
	}{
		{"mss already smaller", syn(t, false, false, 0, mssOpt(1200)), 1436},
		{"mss equal", syn(t, false, false, 0, mssOpt(1436)), 1436},
		{"no mss option", syn(t, false, false, 0, oSACKOK, oTS, oNOP, oWS), 1436},
		{"mss after end of list", syn(t, false, false, 0, oEOL, oMSS1460, oNOP, oNOP, oNOP), 1436},
		{"mss option of length 5", mssLen5, 1436},
		{"option overruns header", overrun, 1436},
		{"option of length 0", zeroLen, 1436},
		{"not a syn", ack, 1436},
		{"rst", rst, 1436},
		{"non-first fragment", frag, 1436},
		{"ipv6 non-first fragment", frag6, 1436},
		{"udp", udp, 1436},
		{"data offset past the end", badOff, 1436},
		{"data offset below 20", shortOff, 1436},
		{"total length past the end", truncated, 1436},
		{"empty", nil, 1436},
		{"garbage", []byte{0x45, 1, 2}, 1436},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := append([]byte(nil), tc.pkt...)
			if ClampMSS(pkt, tc.mss) {
				t.Errorf("ClampMSS reported a change")
			}
			if !bytes.Equal(pkt, tc.pkt) {
				t.Errorf("ClampMSS changed the packet")
			}
		})
	}
}

func synAfterHopByHop(t *testing.T) []byte {
	ip := ip6(host6A, host6B, layers.IPProtocolIPv6HopByHop)
	h := &layers.IPv6HopByHop{}
	h.NextHeader = layers.IPProtocolTCP
	h.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, SYN: true, Window: 64240, Options: []layers.TCPOption{oNOP, oMSS1460, oNOP, oNOP, oNOP}}
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, h, tcp)
}

func synWithIPOptions(t *testing.T) []byte {
	ip := ip4(host4A, host4B, layers.IPProtocolTCP, true)
	ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, SYN: true, Window: 64240, Options: []layers.TCPOption{oMSS1460}}
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp)
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func differing(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestMSSFor(t *testing.T) {
	for _, tc := range []struct {
		mtu  int
		ipv6 bool
		want uint16
	}{
		{1500, false, 1460},
		{1476, false, 1436}, // GRE over 1500
		{1480, false, 1440}, // IPIP over 1500
		{1476, true, 1416},
		{1280, true, 1220},
		{1000, true, 1220}, // IPv6 never below its minimum MTU
		{576, false, 536},  // RFC 879's default
		{68, false, 28},
		{0, false, 28},
		{-5, true, 1220},
		{65535, false, 65495},
		{1 << 20, true, 65475},
	} {
		if got := MSSFor(tc.mtu, tc.ipv6); got != tc.want {
			t.Errorf("MSSFor(%d, %v) = %d, want %d", tc.mtu, tc.ipv6, got, tc.want)
		}
	}
}
