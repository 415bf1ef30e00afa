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

// outFake is a raw socket that can send out of a device and mark, and
// records how it was asked to.
type outFake struct {
	rawFake
	via  []int
	mark []uint32
	fail error // what the next send fails with, once
}

func (f *outFake) WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	f.via, f.mark = append(f.via, ifindex), append(f.mark, mark)
	if err := f.fail; err != nil {
		f.fail = nil
		return 0, err
	}
	return f.WriteBatch(pkts)
}

// TestEgressIndexCache: a device's index is looked up once and kept
// through send errors (an EMSGSIZE is no reason to dump every link
// again), and forgotten when the kernel says no device has it.
func TestEgressIndexCache(t *testing.T) {
	f := &outFake{}
	u := RawIPv4(f).(rawIPOffload).rawIP
	e := Egress{Dev: "lo"}
	u.WriteBatchEgress([][]byte{{0x45}}, netip.AddrPort{}, e)
	cached := func() bool {
		u.devs.mu.Lock()
		defer u.devs.mu.Unlock()
		_, ok := u.devs.m["lo"]
		return ok
	}
	f.fail = syscall.EMSGSIZE
	if _, err := u.WriteBatchEgress([][]byte{{0x45}}, netip.AddrPort{}, e); !errors.Is(err, syscall.EMSGSIZE) || !cached() {
		t.Errorf("after EMSGSIZE (%v) the index is cached: %v, want true", err, cached())
	}
	f.fail = syscall.ENODEV
	if _, err := u.WriteBatchEgress([][]byte{{0x45}}, netip.AddrPort{}, e); !errors.Is(err, syscall.ENODEV) || cached() {
		t.Errorf("after ENODEV (%v) the index is cached: %v, want false", err, cached())
	}
	// A device that is not there is not looked up for every packet.
	gone := Egress{Dev: "gretun-none0"}
	u.WriteBatchEgress([][]byte{{0x45}}, netip.AddrPort{}, gone)
	u.devs.mu.Lock()
	at := u.devs.missing["gretun-none0"]
	u.devs.mu.Unlock()
	u.WriteBatchEgress([][]byte{{0x45}}, netip.AddrPort{}, gone)
	u.devs.mu.Lock()
	again := u.devs.missing["gretun-none0"]
	u.devs.mu.Unlock()
	if at.IsZero() || again != at {
		t.Errorf("a missing device was looked up again at once (%v, then %v)", at, again)
	}
}

// TestWriteBatchEgress: a tunnel's `dev` reaches the socket as the
// device's index (lo is 1 in every namespace) and its `fwmark` as the
// mark, on raw and UDP underlays alike; a device that does not exist
// fails the send as a missing route would, and a socket that cannot
// choose a device or mark says so rather than send by the routes.
func TestWriteBatchEgress(t *testing.T) {
	pkt := []byte{0x45, 1, 2}
	for _, tc := range []struct {
		name string
		u    func(RawConn) Underlay
	}{
		{"raw IPv4", RawIPv4},
		{"raw IPv6", RawIPv6},
		{"UDP", func(c RawConn) Underlay { return UDPIPv4(c, 4754, nil) }},
	} {
		f := &outFake{}
		u := tc.u(f).(EgressWriter)
		if n, err := u.WriteBatchEgress([][]byte{pkt, pkt}, netip.AddrPort{}, Egress{Dev: "lo", Mark: 42}); n != 2 || err != nil || len(f.wrote) != 2 ||
			len(f.via) != 1 || f.via[0] != 1 || f.mark[0] != 42 {
			t.Errorf("%s: WriteBatchEgress(lo, 42) = %d, %v; the socket got %d packets via %v marked %v", tc.name, n, err, len(f.wrote), f.via, f.mark)
		}
		if n, err := u.WriteBatchEgress([][]byte{pkt}, netip.AddrPort{}, Egress{Mark: 7}); n != 1 || err != nil || f.via[1] != 0 || f.mark[1] != 7 {
			t.Errorf("%s: WriteBatchEgress(mark 7) = %d, %v; via %v marked %v", tc.name, n, err, f.via, f.mark)
		}
		if _, err := u.WriteBatchEgress([][]byte{pkt}, netip.AddrPort{}, Egress{Dev: "gretun-none0"}); !errors.Is(err, syscall.ENODEV) || len(f.wrote) != 3 {
			t.Errorf("%s: WriteBatchEgress to a missing device = %v, wrote %d; want ENODEV and nothing sent", tc.name, err, len(f.wrote))
		}
		if reason := countSendError(fmt.Errorf("x: %w", syscall.ENODEV), &counters{}); reason != status.DropNoRoute {
			t.Errorf("a missing device counts as %s, want %s", reason, status.DropNoRoute)
		}
		plain := &rawFake{}
		if _, err := tc.u(plain).(EgressWriter).WriteBatchEgress([][]byte{pkt}, netip.AddrPort{}, Egress{Dev: "lo"}); !errors.Is(err, errNoEgress) || len(plain.wrote) != 0 {
			t.Errorf("%s: a socket without WriteBatchOut: %v, wrote %d", tc.name, err, len(plain.wrote))
		}
	}
}
