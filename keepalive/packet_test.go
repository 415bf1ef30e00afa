package keepalive

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"github.com/dchest/siphash"
	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// sipRef is a plain SipHash-2-4 written from the paper (Aumasson and
// Bernstein, 2012), independent of the package's dependency, so the tests
// can check that the dependency is called with the key halves and output
// bytes in the reference order.
func sipRef(key [16]byte, msg []byte) [8]byte {
	k0 := binary.LittleEndian.Uint64(key[:8])
	k1 := binary.LittleEndian.Uint64(key[8:])
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	// Pad with zeros and the length byte to a multiple of 8.
	b := append([]byte(nil), msg...)
	for len(b)%8 != 7 {
		b = append(b, 0)
	}
	b = append(b, byte(len(msg)))
	for i := 0; i < len(b); i += 8 {
		m := binary.LittleEndian.Uint64(b[i:])
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	var out [8]byte
	binary.LittleEndian.PutUint64(out[:], v0^v1^v2^v3)
	return out
}

// TestSipHashVectors checks both SipHash implementations against test
// vectors from the paper's reference code (key 00..0f, message 00..len-1),
// including the 16-byte length the MAC covers.
func TestSipHashVectors(t *testing.T) {
	vectors := []struct {
		len  int
		want [8]byte
	}{
		{0, [8]byte{0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}},
		{15, [8]byte{0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}},
		{16, [8]byte{0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}},
	}
	k0 := binary.LittleEndian.Uint64(testKey[:8])
	k1 := binary.LittleEndian.Uint64(testKey[8:])
	for _, v := range vectors {
		msg := make([]byte, v.len)
		for i := range msg {
			msg[i] = byte(i)
		}
		if got := sipRef(testKey, msg); got != v.want {
			t.Errorf("sipRef(%d bytes) = %x, want %x", v.len, got, v.want)
		}
		var got [8]byte
		binary.LittleEndian.PutUint64(got[:], siphash.Hash(k0, k1, msg))
		if got != v.want {
			t.Errorf("siphash.Hash(%d bytes) = %x, want %x", v.len, got, v.want)
		}
	}
}

// TestBuildInnerGolden lays out the whole inner packet field by field.
func TestBuildInnerGolden(t *testing.T) {
	const bias = 0x0123456789abcdef
	m, err := newWithKey(Config{}, t0, testKey, bias)
	if err != nil {
		t.Fatal(err)
	}
	var buf [InnerLen + 8]byte
	for i := range buf {
		buf[i] = 0xee // BuildInner must overwrite every byte it claims
	}
	now := t0.Add(1500 * time.Millisecond)
	n := m.BuildInner(buf[:], local, remote, now)
	if n != InnerLen {
		t.Fatalf("BuildInner = %d, want %d", n, InnerLen)
	}
	// timestamp = bias + 1.5e9 ns = 0x0123456789abcdef + 0x59682f00
	ts := uint64(bias + 1500000000)
	want := []byte{
		// IPv4
		0x45,       // version 4, IHL 5
		0x00,       // TOS
		0x00, 0x30, // total length 48
		0x00, 0x01, // ID: first keepalive
		0x00, 0x00, // flags, fragment offset: DF clear
		0xff,       // TTL 255
		0x2f,       // protocol 47 (GRE)
		0x00, 0x00, // checksum, filled in below
		192, 0, 2, 2, // source: remote
		192, 0, 2, 1, // destination: local
		// GRE
		0x00, 0x00, // no flags, version 0
		0x00, 0x00, // protocol type 0: keepalive
		// payload
		'g', 't', 'k', 'a', // magic
		0x01,             // version
		0x00, 0x00, 0x00, // reserved
		byte(ts >> 56), byte(ts >> 48), byte(ts >> 40), byte(ts >> 32),
		byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), // timestamp
		0, 0, 0, 0, 0, 0, 0, 0, // MAC, filled in below
	}
	binary.BigEndian.PutUint16(want[10:], onesComplementRef(want[:20]))
	mac := sipRef(testKey, want[24:40])
	copy(want[40:], mac[:])
	if diff := cmp.Diff(want, buf[:n]); diff != "" {
		t.Errorf("inner packet (-want +got):\n%s", diff)
	}
	for i, b := range buf[n:] {
		if b != 0xee {
			t.Errorf("byte %d after the packet written", n+i)
		}
	}
	// The checksum field is what makes the header sum to 0xffff.
	if s := onesSum(buf[:20]); s != 0xffff {
		t.Errorf("IPv4 header sums to %#04x, want 0xffff", s)
	}
	// The next keepalive has the next ID.
	m.BuildInner(buf[:], local, remote, now)
	if id := binary.BigEndian.Uint16(buf[4:]); id != 2 {
		t.Errorf("second ID %d, want 2", id)
	}
}

// onesSum is the ones' complement sum of b's 16-bit words, folded.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// onesComplementRef computes an IPv4 header checksum the textbook way,
// folding after every addition.
func onesComplementRef(h []byte) uint16 { return ^onesSum(h) }

// TestBuildInnerGopacket decodes BuildInner's output with gopacket, for
// several address pairs, and checks every field and the checksum against
// gopacket's own serialization.
func TestBuildInnerGopacket(t *testing.T) {
	m, err := New(Config{Period: time.Second}, t0)
	if err != nil {
		t.Fatal(err)
	}
	pairs := []struct{ local, remote string }{
		{"192.0.2.1", "192.0.2.2"},
		{"198.51.100.254", "203.0.113.7"},
		{"203.0.113.255", "198.51.100.0"},
		{"::ffff:192.0.2.9", "192.0.2.10"}, // IPv4-mapped is IPv4
	}
	for i, p := range pairs {
		l, r := netip.MustParseAddr(p.local), netip.MustParseAddr(p.remote)
		var buf [InnerLen]byte
		now := t0.Add(time.Duration(i) * 1234567 * time.Microsecond)
		if n := m.BuildInner(buf[:], l, r, now); n != InnerLen {
			t.Fatalf("%v: BuildInner = %d", p, n)
		}
		pkt := gopacket.NewPacket(buf[:], layers.LayerTypeIPv4, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		gre, _ := pkt.Layer(layers.LayerTypeGRE).(*layers.GRE)
		if ip == nil || gre == nil {
			t.Fatalf("%v: gopacket found IPv4 %v GRE %v: %v", p, ip != nil, gre != nil, pkt.ErrorLayer())
		}
		checks := []struct {
			field     string
			got, want any
		}{
			{"version", ip.Version, uint8(4)},
			{"IHL", ip.IHL, uint8(5)},
			{"TOS", ip.TOS, uint8(0)},
			{"length", ip.Length, uint16(InnerLen)},
			{"flags", ip.Flags, layers.IPv4Flag(0)},
			{"fragment offset", ip.FragOffset, uint16(0)},
			{"TTL", ip.TTL, uint8(255)},
			{"protocol", ip.Protocol, layers.IPProtocolGRE},
			{"source (remote)", ip.SrcIP.String(), r.Unmap().String()},
			{"destination (local)", ip.DstIP.String(), l.Unmap().String()},
			{"options", len(ip.Options), 0},
			{"GRE checksum present", gre.ChecksumPresent, false},
			{"GRE key present", gre.KeyPresent, false},
			{"GRE sequence present", gre.SeqPresent, false},
			{"GRE routing present", gre.RoutingPresent, false},
			{"GRE version", gre.Version, uint8(0)},
			{"GRE protocol", gre.Protocol, layers.EthernetType(0)},
			{"payload length", len(gre.LayerPayload()), PayloadLen},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%v: %s = %v, want %v", p, c.field, c.got, c.want)
			}
		}
		// Re-serialize with gopacket computing the checksum; it must
		// match ours.
		want := ip.Checksum
		sb := gopacket.NewSerializeBuffer()
		ip.Checksum = 0
		err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true},
			ip, gre, gopacket.Payload(gre.LayerPayload()))
		if err != nil {
			t.Fatalf("%v: serialize: %v", p, err)
		}
		if diff := cmp.Diff(buf[:], sb.Bytes()); diff != "" {
			t.Errorf("%v: gopacket re-serialization differs (-ours +gopacket):\n%s", p, diff)
		}
		if got := binary.BigEndian.Uint16(sb.Bytes()[10:]); got != want {
			t.Errorf("%v: checksum %#04x, gopacket computes %#04x", p, want, got)
		}
		// And the payload is one Reply accepts.
		if v, _ := m.Reply(now.Add(rtt), gre.LayerPayload()); v != Accepted {
			t.Errorf("%v: reply of the decoded payload: %v", p, v)
		}
	}
}

// TestBuildInnerIPv6: between IPv6 addresses (ip6gre) the inner keepalive
// is an IPv6 packet from remote to local, hop limit 255, GRE protocol 0,
// whose payload Reply accepts.
func TestBuildInnerIPv6(t *testing.T) {
	m, err := New(Config{Period: time.Second}, t0)
	if err != nil {
		t.Fatal(err)
	}
	l, r := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	var buf [InnerLen6]byte
	if n := m.BuildInner(buf[:], l, r, t0); n != InnerLen6 {
		t.Fatalf("BuildInner = %d, want %d", n, InnerLen6)
	}
	pkt := gopacket.NewPacket(buf[:], layers.LayerTypeIPv6, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	gre, _ := pkt.Layer(layers.LayerTypeGRE).(*layers.GRE)
	if ip == nil || gre == nil {
		t.Fatalf("gopacket found IPv6 %v GRE %v: %v", ip != nil, gre != nil, pkt.ErrorLayer())
	}
	if ip.SrcIP.String() != r.String() || ip.DstIP.String() != l.String() || ip.HopLimit != 255 || ip.NextHeader != layers.IPProtocolGRE ||
		int(ip.Length) != InnerLen6-40 || gre.Protocol != 0 || len(gre.LayerPayload()) != PayloadLen {
		t.Errorf("inner keepalive %+v, GRE %+v", ip, gre)
	}
	if v, _ := m.Reply(t0.Add(rtt), gre.LayerPayload()); v != Accepted {
		t.Errorf("reply of the decoded payload: %v", v)
	}
}

func TestBuildInnerRefuses(t *testing.T) {
	m, err := New(Config{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name          string
		size          int
		local, remote netip.Addr
	}{
		{"short buffer", InnerLen - 1, local, remote},
		{"nil buffer", 0, local, remote},
		{"IPv6 local", InnerLen6, v6, remote},
		{"IPv6 remote", InnerLen6, local, v6},
		{"short IPv6 buffer", InnerLen6 - 1, v6, netip.MustParseAddr("2001:db8::2")},
		{"invalid local", InnerLen, netip.Addr{}, remote},
		{"invalid remote", InnerLen, local, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf []byte
			if tt.size > 0 {
				buf = make([]byte, tt.size)
			}
			if n := m.BuildInner(buf, tt.local, tt.remote, t0); n != 0 {
				t.Errorf("BuildInner = %d, want 0", n)
			}
			for i, b := range buf {
				if b != 0 {
					t.Fatalf("byte %d written", i)
				}
			}
		})
	}
}

// TestKeysDiffer checks that New draws a fresh key: two machines built at
// the same instant write different MACs and reject each other's replies.
func TestKeysDiffer(t *testing.T) {
	a, err := New(Config{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var pa, pb [InnerLen]byte
	a.BuildInner(pa[:], local, remote, t0)
	b.BuildInner(pb[:], local, remote, t0)
	if pa == pb {
		t.Fatal("two machines wrote identical keepalives")
	}
	if v, _ := a.Reply(t0, pb[IPv4HeaderLen+GREHeaderLen:]); v != RejectedForged {
		t.Errorf("a judged b's keepalive %v, want %v", v, RejectedForged)
	}
	if v, _ := a.Reply(t0, pa[IPv4HeaderLen+GREHeaderLen:]); v != Accepted {
		t.Errorf("a judged its own keepalive %v", v)
	}
}

func TestAllocs(t *testing.T) {
	m, err := New(Config{Period: time.Second}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var buf [InnerLen]byte
	now := t0
	garbage := make([]byte, PayloadLen)
	tests := []struct {
		name string
		f    func()
	}{
		{"BuildInner", func() {
			now = now.Add(time.Microsecond)
			m.BuildInner(buf[:], local, remote, now)
		}},
		{"Reply accepted", func() {
			now = now.Add(time.Microsecond)
			m.BuildInner(buf[:], local, remote, now)
			if v, _ := m.Reply(now, buf[IPv4HeaderLen+GREHeaderLen:]); v != Accepted {
				t.Fatalf("reply %v", v)
			}
		}},
		{"Reply rejected", func() { m.Reply(now, garbage) }},
		{"Reply replayed", func() { m.Reply(now, buf[IPv4HeaderLen+GREHeaderLen:]) }},
		{"Tick and Sent", func() {
			now = now.Add(time.Second)
			if m.Tick(now) {
				m.Sent(now)
			}
		}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, n)
		}
	}
}

// FuzzReply feeds Reply arbitrary payloads at arbitrary times. It must
// never panic, must return a known verdict, and may accept only a payload
// this machine built and has not accepted before.
func FuzzReply(f *testing.F) {
	m0, err := newWithKey(Config{Period: time.Second}, t0, testKey, 7)
	if err != nil {
		f.Fatal(err)
	}
	var seed [InnerLen]byte
	m0.BuildInner(seed[:], local, remote, t0)
	good := seed[IPv4HeaderLen+GREHeaderLen:]
	f.Add(good, int64(0), int64(rtt))
	f.Add(good[:PayloadLen-1], int64(0), int64(rtt))
	f.Add([]byte{}, int64(0), int64(0))
	f.Add([]byte("gtka\x01\x00\x00\x00"), int64(-5), int64(1<<62))
	f.Fuzz(func(t *testing.T, payload []byte, builtAt, arrive int64) {
		m, err := newWithKey(Config{Period: time.Second}, t0, testKey, 7)
		if err != nil {
			t.Fatal(err)
		}
		// A genuine keepalive built at builtAt, which a fuzzed payload
		// may or may not equal.
		var own [InnerLen]byte
		m.BuildInner(own[:], local, remote, t0.Add(time.Duration(builtAt)))
		ownPayload := own[IPv4HeaderLen+GREHeaderLen:]
		now := t0.Add(time.Duration(arrive))

		before := m.Snapshot(now)
		v, ev := m.Reply(now, payload)
		after := m.Snapshot(now)

		if v < Accepted || v > RejectedReplayed {
			t.Fatalf("unknown verdict %d", v)
		}
		if v == Accepted {
			// Accepting anything other than a payload we built would
			// be a MAC forgery found by the fuzzer.
			fromOurs := len(payload) >= PayloadLen &&
				(string(payload[:PayloadLen]) == string(ownPayload) ||
					string(payload[:PayloadLen]) == string(good))
			if !fromOurs {
				t.Fatalf("accepted a payload we did not build: %x", payload)
			}
			if v2, _ := m.Reply(now, payload); v2 != RejectedReplayed {
				t.Fatalf("second copy %v, want replayed", v2)
			}
		}
		if ev.Changed() {
			t.Fatalf("reply in state up changed state: %v", ev)
		}
		if got := after.Received + after.Rejected - before.Received - before.Rejected; got != 1 {
			t.Fatalf("one reply changed the counters by %d", got)
		}
	})
}

func BenchmarkBuildInner(b *testing.B) {
	m, err := New(Config{}, t0)
	if err != nil {
		b.Fatal(err)
	}
	var buf [InnerLen]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.BuildInner(buf[:], local, remote, t0.Add(time.Duration(i)))
	}
}

func BenchmarkReply(b *testing.B) {
	m, err := New(Config{}, t0)
	if err != nil {
		b.Fatal(err)
	}
	var buf [InnerLen]byte
	m.BuildInner(buf[:], local, remote, t0)
	p := buf[IPv4HeaderLen+GREHeaderLen:]
	b.ReportAllocs()
	for b.Loop() {
		// After the first, every reply is judged fully (shape, MAC,
		// freshness) and rejected as replayed.
		m.Reply(t0, p)
	}
}
