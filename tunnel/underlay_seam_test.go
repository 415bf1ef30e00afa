package tunnel

import (
	"net/netip"
	"testing"
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
