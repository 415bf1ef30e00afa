package rawsock

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
	"golang.org/x/sys/unix"
)

// csumGRE is an outer GRE packet from a to b with the checksum bit and a
// correct checksum, carrying an inner IPv4/UDP datagram (checksum filled)
// whose payload encodes seq:
//
//	IPv4 (20) | GRE C=1 0x0800, checksum, reserved (8) | IPv4 (20) | UDP (8) | payload
func csumGRE(seq int) []byte {
	payload := []byte{'o', 'f', 'f', 'l', 'o', 'a', 'd', byte(seq >> 8), byte(seq)}
	in := make([]byte, 28+len(payload))
	in[0], in[8], in[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(in[2:], uint16(len(in)))
	copy(in[12:], []byte{198, 51, 100, 1, 203, 0, 113, 1})
	binary.BigEndian.PutUint16(in[10:], header.Checksum(in[:20]))
	u := in[20:]
	binary.BigEndian.PutUint16(u[0:], 4000)
	binary.BigEndian.PutUint16(u[2:], 9)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], header.Fold(header.Sum(u, header.PseudoSum(in[12:20], 17, len(u)))))
	gre := append([]byte{0x80, 0, 0x08, 0, 0, 0, 0, 0}, in...)
	binary.BigEndian.PutUint16(gre[4:], header.Checksum(gre))
	return outer(ProtoGRE, addrA, addrB, uint16(seq), true, gre)
}

const (
	greAt = 20      // GRE header in csumGRE's packets
	udpAt = 20 + 28 // inner UDP header
)

// unfilled returns copies of p as a Linux sender leaves them to a NIC:
// the GRE checksum zero (to be filled at greAt+4), and the GRE checksum
// filled but the inner UDP checksum holding its seed, the pseudo-header
// sum (to be filled at udpAt+6; local checksum offload).
func unfilled(p []byte) (gre, udp []byte) {
	gre = append([]byte(nil), p...)
	binary.BigEndian.PutUint16(gre[greAt+4:], 0)
	udp = append([]byte(nil), p...)
	seed := ^header.Fold(header.PseudoSum(udp[greAt+8+12:greAt+8+20], 17, len(udp)-udpAt))
	binary.BigEndian.PutUint16(udp[udpAt+6:], seed)
	return gre, udp
}

func TestCompleteChecksum(t *testing.T) {
	good := csumGRE(1)
	gre, udp := unfilled(good)
	for _, c := range []struct {
		name       string
		pkt        []byte
		start, off int
		gso        bool
		ok         bool
	}{
		{"gre checksum left to offload", gre, greAt, 4, false, true},
		{"udp checksum left to offload", udp, udpAt, 6, false, true},
		{"segmentation offload: gre checksum never computed", gsoPacket(udp), udpAt, 6, true, true},
		{"place beyond the packet", gre, len(gre) - 1, 4, false, false},
		{"place inside the ipv4 header", gre, 8, 2, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := append([]byte(nil), c.pkt...)
			if ok := completeChecksum(p, greAt, c.start, c.off, c.gso); ok != c.ok {
				t.Fatalf("completeChecksum = %v, want %v", ok, c.ok)
			}
			want := good
			if !c.ok {
				want = c.pkt
			}
			if string(p) != string(want) {
				t.Errorf("packet after completion:\n got % x\nwant % x", p, want)
			}
		})
	}
}

// gsoPacket is p as a segmentation-offload packet reaches a receiver: the
// GRE checksum word not even zeroed.
func gsoPacket(p []byte) []byte {
	p = append([]byte(nil), p...)
	binary.BigEndian.PutUint32(p[greAt+4:], 0xdeadbeef)
	return p
}

// TestCompleteChecksumSideChannel sends, from namespace a to b, GRE packets
// with filled checksums, as from a wire, more than the side channel's ring
// holds, none of which the receiver asks about; then packets whose
// checksums are marked as left to offload, and unmarked ones with the same
// bytes. CompleteChecksum completes exactly the marked ones.
func TestCompleteChecksumSideChannel(t *testing.T) {
	_, a, b := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	if err := rx.OffloadErr(); err != nil {
		t.Fatal(err)
	}
	if err := openIn(t, a, ProtoIPIP).OffloadErr(); err != nil {
		t.Errorf("IPIP Conn: OffloadErr %v, want nil", err)
	}
	dst, err := testnet.MAC(b, "ub")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := testnet.NewPartialSender(a, "ua", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	const wire = 3 * csumFrames
	for i := 0; i < wire; i += 64 {
		batch := make([][]byte, 64)
		for j := range batch {
			batch[j] = csumGRE(i + j)
		}
		if _, err := tx.WriteBatch(batch); err != nil {
			t.Fatal(err)
		}
		if _, err := readN(rx, len(batch), len(batch)); err != nil {
			t.Fatal(err)
		}
	}

	good := csumGRE(wire)
	gre, udp := unfilled(good)
	if err := ps.Send(gre, greAt, 4); err != nil {
		t.Fatal(err)
	}
	if err := ps.Send(udp, udpAt, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.WriteBatch([][]byte{gre, udp}); err != nil {
		t.Fatal(err)
	}
	got, err := readN(rx, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		marked := i < 2
		sent := p
		before := append([]byte(nil), p...)
		if ok := rx.CompleteChecksum(p); ok != marked {
			t.Errorf("packet %d (marked %v): CompleteChecksum = %v", i, marked, ok)
		}
		switch {
		case marked && string(p) != string(good):
			t.Errorf("packet %d completed to\n% x\nwant\n% x", i, p, good)
		case !marked && string(p) != string(before):
			t.Errorf("unmarked packet %d changed:\n% x\nwas\n% x", i, sent, before)
		}
	}
}

// fakeRing is a ring in plain memory, its frames written as the kernel
// writes them: status, snap length, link and network offsets, the virtio
// header right before the packet.
func fakeRing() *offloadRing {
	return &offloadRing{mem: make([]byte, csumFrames/csumPerBlock*csumBlockSize)}
}

func (r *offloadRing) put(i uint, user bool, rec []byte, vh header.VirtioNetFields) {
	const at = 64 // link and network header: raw IP, as on a tun
	f := r.frame(i)
	clear(f)
	if user {
		binary.NativeEndian.PutUint32(f[tpStatus:], unix.TP_STATUS_USER)
	}
	binary.NativeEndian.PutUint32(f[tpSnaplen:], uint32(len(rec)))
	binary.NativeEndian.PutUint16(f[tpMac:], at)
	binary.NativeEndian.PutUint16(f[tpNet:], at)
	header.VirtioNet(f[at-header.VirtioNetHeaderLen:]).Encode(&vh)
	copy(f[at:], rec)
}

// TestCompleteChecksumFrameInProgress: CPUs fill frames at once, so a
// frame the kernel is still writing can come before the finished record
// of the packet the raw socket just delivered. The search looks past it,
// and nothing releases it while it is written (it would come back marked
// ours behind the ring's start and stop the ring).
func TestCompleteChecksumFrameInProgress(t *testing.T) {
	good := csumGRE(7)
	_, udp := unfilled(good)
	mark := header.VirtioNetFields{Flags: header.VirtioNetFlagNeedsCsum, CsumStart: udpAt, CsumOffset: 6}
	r := fakeRing()
	r.put(0, false, nil, header.VirtioNetFields{}) // being written on another CPU
	r.put(1, true, udp, mark)
	pkt := append([]byte(nil), udp...)
	if !r.complete(pkt) || string(pkt) != string(good) {
		t.Fatalf("the record behind a frame in progress was not used: %v\n% x", string(pkt) == string(good), pkt)
	}
	r.releaseTo(2)
	if r.next != 0 {
		t.Errorf("released up to %d, past the frame the kernel is writing", r.next)
	}
	// Many finished records behind it: trim must not spin or pass it.
	for i := uint(1); i <= csumKeep+1; i++ {
		r.put(i, true, csumGRE(int(i)), header.VirtioNetFields{})
	}
	r.trim()
	if r.next != 0 {
		t.Errorf("trim released up to %d, past the frame the kernel is writing", r.next)
	}
	r.put(0, true, csumGRE(0), header.VirtioNetFields{}) // written now
	r.trim()
	if r.next != 2 {
		t.Errorf("trim released up to %d, want 2 (%d records kept)", r.next, csumKeep)
	}
}

// TestCompleteChecksumRecordLate: the raw socket can deliver a packet
// before the kernel writes its record; the search waits for it, but a
// packet that never gets a record (from a wire) costs at most csumWait,
// and all of them together at most csumWaitBudget a second.
func TestCompleteChecksumRecordLate(t *testing.T) {
	good := csumGRE(9)
	_, udp := unfilled(good)
	mark := header.VirtioNetFields{Flags: header.VirtioNetFlagNeedsCsum, CsumStart: udpAt, CsumOffset: 6}
	r := fakeRing()
	r.put(0, false, udp, mark)
	waits := 0
	r.onWait = func() {
		if waits++; waits == 1 && !isUser(r.frame(0)) && r.next == 0 { // the kernel writes it now
			atomic.StoreUint32(status(r.frame(0)), unix.TP_STATUS_USER)
		}
	}
	pkt := append([]byte(nil), udp...)
	if !r.complete(pkt) || string(pkt) != string(good) {
		t.Fatalf("a record written after the packet arrived was not used")
	}
	waited := 0
	for i := range 100 {
		waits = 0
		if r.complete(csumGRE(1000 + i)) {
			t.Fatalf("a packet without a record was completed")
		}
		if waits > 0 {
			waited++
		}
	}
	// Each wait lasts csumWait at least: no more than the budget holds.
	if most := int(csumWaitBudget/csumWait) + 1; waited > most {
		t.Errorf("%d of 100 packets without a record waited, want at most %d (budget %v a second)", waited, most, csumWaitBudget)
	}
}
