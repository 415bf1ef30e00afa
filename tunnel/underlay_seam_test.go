package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/gretun/gretun/status"
)

// rawFake is a raw socket that records what it is given and, like
// rawsock.Conn, completes offloaded checksums.
type rawFake struct {
	wrote     [][]byte
	completed int
}

func (f *rawFake) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	sizes[0] = copy(bufs[0], "pkt")
	return 1, nil
}

func (f *rawFake) WriteBatch(pkts [][]byte) (int, error) {
	f.wrote = append(f.wrote, pkts...)
	return len(pkts), nil
}

func (f *rawFake) Close() error                     { return nil }
func (f *rawFake) CompleteChecksum(pkt []byte) bool { f.completed++; return true }
func (f *rawFake) OffloadErr() error                { return nil }

// TestRawIPv4: a raw socket behind the seam sends packets as they are,
// whatever the endpoint (they carry it), leaves the endpoints of what it
// reads alone, adds no header, and still completes offloaded checksums.
func TestRawIPv4(t *testing.T) {
	f := &rawFake{}
	u := RawIPv4(f)
	pkt := []byte{0x45, 1, 2}
	if n, err := u.WriteBatch([][]byte{pkt}, netip.MustParseAddrPort("192.0.2.2:0")); n != 1 || err != nil || len(f.wrote) != 1 || &f.wrote[0][0] != &pkt[0] {
		t.Errorf("WriteBatch = %d, %v; the socket got %d packets", n, err, len(f.wrote))
	}
	bufs, sizes, from := [][]byte{make([]byte, 8)}, make([]int, 1), make([]netip.AddrPort, 1)
	if n, err := u.ReadBatch(bufs, sizes, from); n != 1 || err != nil || sizes[0] != 3 || from[0].IsValid() {
		t.Errorf("ReadBatch = %d, %v, size %d, from %v", n, err, sizes[0], from[0])
	}
	if u.HeaderLen() != 0 || u.Headroom() != 0 || u.GSO() {
		t.Errorf("raw IPv4: header %d, headroom %d, GSO %v; want 0, 0, false", u.HeaderLen(), u.Headroom(), u.GSO())
	}
	cc, ok := u.(checksumCompleter)
	if !ok || !cc.CompleteChecksum(pkt) || f.completed != 1 {
		t.Error("the underlay does not complete offloaded checksums through its socket")
	}
}

// viaFake is a raw socket that can send out of a device, and records by
// which.
type viaFake struct {
	rawFake
	via []int
}

func (f *viaFake) WriteBatchVia(pkts [][]byte, ifindex int) (int, error) {
	f.via = append(f.via, ifindex)
	return f.WriteBatch(pkts)
}

// TestWriteBatchDev: a tunnel's `dev` reaches the socket as the device's
// index (lo is 1 in every namespace), on raw and UDP underlays alike; a
// device that does not exist fails the send as a missing route would,
// and a socket that cannot choose a device says so rather than send by
// the routes.
func TestWriteBatchDev(t *testing.T) {
	pkt := []byte{0x45, 1, 2}
	for _, tc := range []struct {
		name string
		u    func(RawConn) Underlay
	}{
		{"raw IPv4", RawIPv4},
		{"raw IPv6", RawIPv6},
		{"UDP", func(c RawConn) Underlay { return UDPIPv4(c, 4754, nil) }},
	} {
		f := &viaFake{}
		u := tc.u(f).(DeviceWriter)
		if n, err := u.WriteBatchDev([][]byte{pkt, pkt}, netip.AddrPort{}, "lo"); n != 2 || err != nil || len(f.via) != 1 || f.via[0] != 1 || len(f.wrote) != 2 {
			t.Errorf("%s: WriteBatchDev(lo) = %d, %v; the socket got %d packets via %v", tc.name, n, err, len(f.wrote), f.via)
		}
		if _, err := u.WriteBatchDev([][]byte{pkt}, netip.AddrPort{}, "gretun-none0"); !errors.Is(err, syscall.ENODEV) || len(f.wrote) != 2 {
			t.Errorf("%s: WriteBatchDev to a missing device = %v, wrote %d; want ENODEV and nothing sent", tc.name, err, len(f.wrote))
		}
		if reason := countSendError(fmt.Errorf("x: %w", syscall.ENODEV), &counters{}); reason != status.DropNoRoute {
			t.Errorf("a missing device counts as %s, want %s", reason, status.DropNoRoute)
		}
		plain := &rawFake{}
		if _, err := tc.u(plain).(DeviceWriter).WriteBatchDev([][]byte{pkt}, netip.AddrPort{}, "lo"); !errors.Is(err, errNoVia) || len(plain.wrote) != 0 {
			t.Errorf("%s: a socket without WriteBatchVia: %v, wrote %d", tc.name, err, len(plain.wrote))
		}
	}
}
