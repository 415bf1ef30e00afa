package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gretun/gretun/header"
)

// tcpRunPayload is a coalesced datagram's payload of n GRE-wrapped TCP
// segments of one flow, seg bytes each, the last holding last bytes of
// TCP payload.
func tcpRunPayload(seg, n, last int) []byte {
	var payload []byte
	for k := range n {
		s := make([]byte, seg)
		if k == n-1 {
			s = s[:seg-100+last]
		}
		s[2], s[3] = 0x08, 0x00
		in := s[4:]
		in[0] = 0x45
		binary.BigEndian.PutUint16(in[2:], uint16(len(in)))
		in[9] = header.ProtoTCP
		binary.BigEndian.PutUint32(in[20+4:], uint32(k*100))
		in[20+12], in[20+13] = 5<<4, header.TCPFlagACK
		for i := 40; i < len(in); i++ {
			in[i] = byte(k)
		}
		payload = append(payload, s...)
	}
	return payload
}

// TestTCPRunAllocs: checking a coalesced datagram's run and rebuilding
// it in place allocate nothing.
func TestTCPRunAllocs(t *testing.T) {
	const seg, n = 4 + 20 + 20 + 100, 10
	payload := tcpRunPayload(seg, n, 100)
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

// FuzzTCPRun: whatever a datagram holds, the run check never panics, and
// what it takes is rebuilt into one packet whose IPv4 length is its own
// and whose TCP payload is the segments' payloads in order.
func FuzzTCPRun(f *testing.F) {
	f.Add(tcpRunPayload(144, 3, 40), 144, 4)
	f.Add(tcpRunPayload(144, 2, 100), 144, 4)
	f.Add(tcpRunPayload(144, 3, 40)[4:], 140, 0)
	f.Add([]byte{0x45, 0, 0, 1}, 1, 0)
	f.Fuzz(func(t *testing.T, payload []byte, seg, encap int) {
		if seg <= 0 || encap < 0 || encap > 64 {
			return
		}
		r, ok := tcpRunOf(payload, seg, encap)
		if !ok {
			return
		}
		var want []byte
		hl := encap + header.IPv4MinLen + r.thl
		for off := 0; off < len(payload); off += seg {
			want = append(want, payload[off+hl:min(off+seg, len(payload))]...)
		}
		end := r.build(payload, seg)
		in := header.IPv4(payload[encap:end])
		if in.TotalLen() != len(in) || !in.ChecksumValid() || !bytes.Equal(in[header.IPv4MinLen+r.thl:], want) {
			t.Fatalf("rebuilt %x, want payload %x", in, want)
		}
	})
}
