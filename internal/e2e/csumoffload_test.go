package e2e

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
)

// Inside the tunnel of the offload tests: gretun's side and the far side.
const (
	csumNear = "198.51.100.1"
	csumFar  = "203.0.113.1"
)

// TestOffloadedGREChecksum: a Linux GRE sender on the same host (a VM
// behind virtio and tap, a container behind veth) leaves its GRE checksum,
// or the checksum of TCP or UDP inside, for a NIC to fill
// (CHECKSUM_PARTIAL), and the packet reaches gretun's namespace unfilled.
// Here B plays that sender: it writes GRE packets on its veth through an
// AF_PACKET socket with a virtio header saying which checksum is left to
// offload, which is how the kernel hands them on. gretun (csum) must
// deliver both kinds. Packets with an unfilled (zero) or wrong checksum
// that B sends through a raw IP socket, as from a wire, must still be
// dropped and counted as gre-checksum.
func TestOffloadedGREChecksum(t *testing.T) {
	tp := Pair(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "csum")
	tp.Route(tp.A, "netb", csumNear, csumFar+"/32")

	e, err := encap.New(encap.Config{
		Mode: encap.ModeGRE, Local: netip.MustParseAddr(UnderB), Remote: netip.MustParseAddr(UnderA),
		TTL: 64, Checksum: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ping := greWithChecksum(t, e, innerPing())
	udp := greWithChecksum(t, e, innerUDP())
	hl := header.IPv4MinLen
	greLen := e.Overhead() - hl

	// What the kernel hands a NIC: the GRE checksum unfilled (0) and left
	// to offload at the GRE header, or, when the inner UDP checksum is
	// itself left to offload, the GRE checksum computed as if it were
	// filled (local checksum offload) and the UDP one holding its seed,
	// the pseudo-header sum.
	gsum := append([]byte(nil), ping...)
	binary.BigEndian.PutUint16(gsum[hl+4:], 0)
	lco := append([]byte(nil), udp...)
	udpOff := hl + greLen + header.IPv4MinLen
	seed := ^header.Fold(header.PseudoSum(lco[hl+greLen+12:hl+greLen+20], 17, len(lco)-udpOff))
	binary.BigEndian.PutUint16(lco[udpOff+6:], seed)

	s0 := tp.Stats(tp.A, "netb")
	snmp0 := udpSNMP(t, tp, tp.A)
	out := offloadWriter(t, tp)
	tp.must(out.Send(gsum, hl, 4))
	tp.must(out.Send(lco, udpOff, 6))
	s1 := waitRx(t, tp, s0.RxPackets+2)
	if d := s1.RxPackets - s0.RxPackets; d != 2 || s1.Drops["gre-checksum"] != s0.Drops["gre-checksum"] {
		t.Errorf("packets with checksums left to offload: %d delivered of 2, drops %v", d, s1.Drops)
	}
	// The inner UDP checksum was completed before the TUN: the kernel
	// found it right (no port listens, so it counts NoPorts).
	snmp1 := udpSNMP(t, tp, tp.A)
	if snmp1["InCsumErrors"] != snmp0["InCsumErrors"] || snmp1["NoPorts"] != snmp0["NoPorts"]+1 {
		t.Errorf("UDP counters in A before %v after %v: want NoPorts +1 and no InCsumErrors", snmp0, snmp1)
	}

	// From a wire: nothing marks these, whatever their checksum field.
	wrong := append([]byte(nil), ping...)
	wrong[hl+4] ^= 0x10
	raw := rawSocketIn(t, tp.B, unix.IPPROTO_RAW)
	defer unix.Close(raw)
	for _, p := range [][]byte{gsum, wrong, lco} {
		if err := sendRaw(raw, p, UnderA); err != nil {
			t.Fatal(err)
		}
	}
	s2 := waitDrops(t, tp, "gre-checksum", s1.Drops["gre-checksum"]+3, s1.RxPackets)
	if d := s2.Drops["gre-checksum"] - s1.Drops["gre-checksum"]; d != 3 || s2.RxPackets != s1.RxPackets {
		t.Errorf("unmarked packets with unfilled or wrong checksums: %d counted as gre-checksum of 3, %d delivered", d, s2.RxPackets-s1.RxPackets)
	}

	// The side channel sees packets before netfilter: one the firewall
	// drops must stay dropped, though its offload mark was seen.
	restore := tp.blockGRE(tp.A)
	tp.must(out.Send(gsum, hl, 4))
	sleep(300)
	restore()
	tp.must(out.Send(gsum, hl, 4)) // the same again, after the first one's stale record
	s3 := waitRx(t, tp, s2.RxPackets+1)
	if d := s3.RxPackets - s2.RxPackets; d != 1 {
		t.Errorf("%d packets delivered, want 1: the one the firewall dropped got through", d)
	}
}

// greWithChecksum encapsulates inner as B would send it to A, checksum
// filled.
func greWithChecksum(t *testing.T, e *encap.Encapsulator, inner []byte) []byte {
	t.Helper()
	buf := make([]byte, encap.Headroom+len(inner))
	copy(buf[encap.Headroom:], inner)
	p, err := e.Encap(buf, encap.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	header.IPv4(p).UpdateChecksum()
	return p
}

func innerIPv4(proto uint8, payload []byte) []byte {
	p := make([]byte, header.IPv4MinLen+len(payload))
	p[0], p[8], p[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], netip.MustParseAddr(csumFar).AsSlice())
	copy(p[16:], netip.MustParseAddr(csumNear).AsSlice())
	copy(p[20:], payload)
	header.IPv4(p).UpdateChecksum()
	return p
}

// innerPing is an echo request from the far side to gretun's side.
func innerPing() []byte {
	icmp := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'c', 's', 'u', 'm'}
	binary.BigEndian.PutUint16(icmp[2:], header.Checksum(icmp))
	return innerIPv4(1, icmp)
}

// innerUDP is a datagram to a port nobody listens on, checksum filled.
func innerUDP() []byte {
	p := innerIPv4(17, []byte{0x0f, 0xa0, 0, 9, 0, 13, 0, 0, 'c', 's', 'u', 'm', '!'})
	u := p[header.IPv4MinLen:]
	binary.BigEndian.PutUint16(u[6:], header.Fold(header.Sum(u, header.PseudoSum(p[12:20], 17, len(u)))))
	return p
}

// offloadWriter writes from B's veth to A's as a same-host sender that
// leaves checksums to offload.
func offloadWriter(t *testing.T, tp *Topology) *testnet.PartialSender {
	t.Helper()
	dst, err := testnet.MAC(tp.A, "wan")
	if err != nil {
		t.Fatal(err)
	}
	s, err := testnet.NewPartialSender(tp.B, "wan", dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// udpSNMP reads the Udp line of /proc/net/snmp in ns.
func udpSNMP(t *testing.T, tp *Topology, ns string) map[string]uint64 {
	t.Helper()
	var names []string
	m := map[string]uint64{}
	for _, line := range strings.Split(tp.Sh(ns, "cat", "/proc/net/snmp"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				m[names[i]], _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	return m
}

// waitRx waits until A's tunnel has received n packets (or a deadline) and
// returns its counters.
func waitRx(t *testing.T, tp *Topology, n uint64) (s tunnel.Stats) {
	tp.waitFor("packets delivered", func() bool { s = tp.Stats(tp.A, "netb"); return s.RxPackets >= n || s.RxErrors > 0 })
	return s
}

// waitDrops waits until A's tunnel has counted n drops for reason, or
// received more than rx packets.
func waitDrops(t *testing.T, tp *Topology, reason string, n, rx uint64) (s tunnel.Stats) {
	tp.waitFor(reason+" drops", func() bool { s = tp.Stats(tp.A, "netb"); return s.Drops[reason] >= n || s.RxPackets > rx })
	return s
}
