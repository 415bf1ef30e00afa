package tunnel

import (
	"encoding/binary"
	"testing"

	"github.com/gretun/gretun/header"
)

// TestTCPRunAllocs: checking a coalesced datagram's run and rebuilding
// it in place allocate nothing.
func TestTCPRunAllocs(t *testing.T) {
	const seg, n = 4 + 20 + 20 + 100, 10
	payload := make([]byte, seg*n)
	for k := range n {
		s := payload[k*seg:]
		s[2], s[3] = 0x08, 0x00
		in := s[4:seg]
		in[0] = 0x45
		binary.BigEndian.PutUint16(in[2:], uint16(len(in)))
		in[9] = header.ProtoTCP
		binary.BigEndian.PutUint32(in[20+4:], uint32(k*100))
		in[20+12], in[20+13] = 5<<4, header.TCPFlagACK
	}
	work := make([]byte, len(payload))
	allocs := testing.AllocsPerRun(100, func() {
		copy(work, payload)
		r, ok := tcpRunOf(work, seg, 4)
		if !ok || r.n != n {
			t.Fatalf("run %+v, %v", r, ok)
		}
		r.build(work, seg)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations", allocs)
	}
}
