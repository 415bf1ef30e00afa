package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gretun/gretun/header"
)

// FuzzFragment fragments arbitrary packets at arbitrary MTUs, tiny and
// negative ones included (a route with `mtu lock 28` once made this divide
// by zero): it never panics, refuses MTUs below IPv4's 68, and what it
// returns fits the MTU after the headroom asked for and reassembles to the
// packet.
func FuzzFragment(f *testing.F) {
	pkt := make([]byte, 1400)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, header.ProtoGRE
	header.IPv4(pkt).UpdateChecksum()
	for _, mtu := range []int{-1, 0, 1, 27, 28, 29, 36, 67, 68, 69, 576, 1399, 1400, 1500} {
		f.Add(pkt, mtu, false)
		f.Add(pkt, mtu, true)
	}
	var pool fragPool
	f.Fuzz(func(t *testing.T, pkt []byte, mtu int, inner bool) {
		head := 0
		if inner {
			head = innerOffset
		}
		pool.reset()
		n, ok := pool.fragment(pkt, mtu, head)
		if !ok {
			return
		}
		if mtu < 68 {
			t.Fatalf("mtu %d accepted", mtu)
		}
		var payload []byte
		for i, fr := range pool.last(n) {
			fr = fr[head:]
			if len(fr) > mtu {
				t.Fatalf("fragment %d is %d bytes, mtu %d", i, len(fr), mtu)
			}
			ip := header.IPv4(fr)
			off := int(binary.BigEndian.Uint16(fr[6:])&header.IPv4FragOffset)*8 - int(binary.BigEndian.Uint16(pkt[6:])&header.IPv4FragOffset)*8
			if off != len(payload) {
				t.Fatalf("fragment %d at offset %d, want %d", i, off, len(payload))
			}
			payload = append(payload, fr[ip.HeaderLen():]...)
		}
		if !bytes.Equal(payload, pkt[header.IPv4(pkt).HeaderLen():]) {
			t.Fatal("fragments do not reassemble to the packet")
		}
	})
}

// TestFragmentAllocs: once its buffers exist, the pool fragments outer and
// inner packets (the hot path of an oversize batch) without allocating.
func TestFragmentAllocs(t *testing.T) {
	pkt := make([]byte, 4000)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, header.ProtoUDP
	var pool fragPool
	frag := func() {
		pool.reset()
		if _, ok := pool.fragment(pkt, 1476, innerOffset); !ok {
			t.Fatal("inner packet not fragmented")
		}
		if _, ok := pool.fragment(pkt, 1500, 0); !ok {
			t.Fatal("outer packet not fragmented")
		}
	}
	frag()
	if n := testing.AllocsPerRun(100, frag); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
}
