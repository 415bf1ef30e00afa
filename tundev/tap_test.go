package tundev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/internal/testpkt"
)

// asFrame turns a super-packet read from a TUN (virtio header, IP packet)
// into the super-frame a TAP reads: l2 in front of the IP packet, the
// checksum start moved past it.
func asFrame(in, l2 []byte) []byte {
	out := append(append(append([]byte{}, in[:VirtioHdrLen]...), l2...), in[VirtioHdrLen:]...)
	h := header.VirtioNet(out)
	binary.NativeEndian.PutUint16(out[header.VirtioNetCsumStart:], h.CsumStart()+uint16(len(l2)))
	return out
}

func ethHeader(tags ...uint16) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
	for _, tpid := range tags {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 42) // VLAN 42
	}
	return b
}

// TestSplitFrame: a TAP's super-frame splits into exactly the segments of
// the same super-packet read from a TUN, each behind the frame's Ethernet
// header and VLAN tags; an ordinary frame's checksum is completed at the
// frame's own offset.
func TestSplitFrame(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, sp := range []superPacket{
		{mss: 1448, payload: payload, flags: header.TCPFlagPSH | header.TCPFlagFIN},
		{v6: true, mss: 1428, payload: payload},
		{udp: true, mss: 1200, payload: payload},
	} {
		for _, tags := range [][]uint16{nil, {0x8100}, {0x88a8, 0x8100}} {
			in := sp.build(t)
			l2 := ethHeader(tags...)
			typ := uint16(header.EtherTypeIPv4)
			if sp.v6 {
				typ = header.EtherTypeIPv6
			}
			l2 = binary.BigEndian.AppendUint16(l2, typ)
			wantBufs, wantSizes := testBufs(8, 1600)
			want, err := split(bytes.Clone(in), wantBufs, wantSizes, testOffset)
			if err != nil {
				t.Fatal(err)
			}
			bufs, sizes := testBufs(8, 1600)
			n, err := splitFrame(asFrame(in, l2), bufs, sizes, testOffset)
			if err != nil || n != want {
				t.Fatalf("v6 %v udp %v tags %x: splitFrame = %d, %v; want %d segments", sp.v6, sp.udp, tags, n, err, want)
			}
			for i := range n {
				got := bufs[i][testOffset : testOffset+sizes[i]]
				seg := wantBufs[i][testOffset : testOffset+wantSizes[i]]
				if !bytes.Equal(got[:len(l2)], l2) || !bytes.Equal(got[len(l2):], seg) {
					t.Fatalf("tags %x: segment %d is not the frame header and the TUN's segment", tags, i)
				}
			}
		}
	}
	// An ordinary frame with its checksum left to complete.
	in := superPacket{mss: 1448, payload: payload[:100]}.build(t)
	in[1] = header.VirtioNetGSONone
	plainBufs, plainSizes := testBufs(1, 1600)
	if _, err := split(bytes.Clone(in), plainBufs, plainSizes, testOffset); err != nil {
		t.Fatal(err)
	}
	l2 := binary.BigEndian.AppendUint16(ethHeader(0x8100), header.EtherTypeIPv4)
	bufs, sizes := testBufs(1, 1600)
	if n, err := splitFrame(asFrame(in, l2), bufs, sizes, testOffset); n != 1 || err != nil ||
		!bytes.Equal(bufs[0][testOffset+len(l2):testOffset+sizes[0]], plainBufs[0][testOffset:testOffset+plainSizes[0]]) {
		t.Fatalf("ordinary frame: %d, %v", n, err)
	}
}

// TestSplitFrameRefuses: a GSO frame that carries no IP after its Ethernet
// header (ARP, three VLAN tags) or whose checksum starts inside it is
// malformed.
func TestSplitFrameRefuses(t *testing.T) {
	in := superPacket{mss: 1000, payload: make([]byte, 3000)}.build(t)
	for name, l2 := range map[string][]byte{
		"arp":         binary.BigEndian.AppendUint16(ethHeader(), 0x0806),
		"three tags":  binary.BigEndian.AppendUint16(ethHeader(0x88a8, 0x8100, 0x8100), header.EtherTypeIPv4),
		"cut short":   ethHeader()[:10],
		"csum inside": nil,
	} {
		f := asFrame(in, l2)
		if l2 == nil {
			f = asFrame(in, binary.BigEndian.AppendUint16(ethHeader(), header.EtherTypeIPv4))
			binary.NativeEndian.PutUint16(f[header.VirtioNetCsumStart:], 4)
		}
		bufs, sizes := testBufs(8, 1600)
		if _, err := splitFrame(f, bufs, sizes, testOffset); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", name, err)
		}
	}
}

// TestTAP opens a TAP device in a namespace: an Ethernet device with a MAC
// address. ARP requests written to it in a batch (frame by frame, not
// through the IP coalescer) are answered by the kernel, and the replies
// are read back with its MAC address as source.
func TestTAP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, /dev/net/tun and network namespaces; skipped with -short")
	}
	n := testnet.ForTest(t)
	ns, err := n.NS("tap")
	if err != nil {
		t.Fatal(err)
	}
	var d *Device
	if err := testnet.InNS(ns, func() (err error) { d, err = OpenTAP("tp0"); return err }); err != nil {
		t.Fatalf("OpenTAP: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := n.Addr(ns, "tp0", "198.51.100.1/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(ns, "ip", "link", "set", "dev", "tp0", "up"); err != nil {
		t.Fatal(err)
	}
	var mac net.HardwareAddr
	if err := testnet.InNS(ns, func() error {
		ifi, err := net.InterfaceByName("tp0")
		mac = ifi.HardwareAddr
		return err
	}); err != nil || len(mac) != 6 {
		t.Fatalf("tp0 has no MAC address: %v %v", mac, err)
	}
	bufs := make([][]byte, 2)
	for i := range bufs {
		bufs[i] = append(make([]byte, testOffset), testpkt.Frame...)
		bufs[i][testOffset+len(testpkt.Frame)-1] = 1 // who has 198.51.100.1
		bufs[i][testOffset+31] = byte(2 + i)         // from 198.51.100.2, .3
	}
	if _, err := d.Write(bufs, testOffset); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if d.gro.Load() != nil {
		t.Error("a TAP's batch went through the IP coalescer")
	}
	got := 0
	rbufs, sizes := testBufs(4, 1600)
	deadline := time.Now().Add(5 * time.Second)
	for got < 2 && time.Now().Before(deadline) {
		d.File().SetReadDeadline(deadline)
		k, err := d.Read(rbufs, sizes, testOffset)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		for i := range k {
			f := header.Ethernet(rbufs[i][testOffset : testOffset+sizes[i]])
			if f.EtherType() == 0x0806 && bytes.Equal(f.Src(), mac) && f.Payload()[7] == 2 { // ARP reply
				got++
			}
		}
	}
	if got != 2 {
		t.Errorf("%d ARP replies read, want 2", got)
	}
}
