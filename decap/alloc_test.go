package decap_test

import (
	"testing"

	"github.com/gretun/gretun/decap"
)

// TestAllocs is the allocation budget of the receiving hot path: none,
// for accepted and dropped packets alike.
func TestAllocs(t *testing.T) {
	pkts := [][]byte{
		build(4, in4),
		build(47, greHdr(0, 0x0800, 0, 0), in4),
		build(47, greHdr(0xb000, 0x0800, 42, 1), in4),
		build(47, greHdr(0x2000, 0x86dd, 42, 0), in6),
		build(47, greHdr(0, 0, 0, 0)),
	}
	for _, c := range parseCases {
		pkts = append(pkts, c.pkt)
	}
	rx := decap.NewReceiver(decap.Policy{HasKey: true, Key: 42, RequireChecksum: true, RequireSequence: true})
	var p decap.Packet
	for _, pkt := range pkts {
		allocs := testing.AllocsPerRun(100, func() {
			if decap.Parse(pkt, &p) == decap.OK {
				rx.Accept(&p)
				decap.DecapECN(pkt[p.Start:p.End], 0)
			}
		})
		if allocs != 0 {
			t.Errorf("% x: %v allocations per packet, want 0", pkt[:min(len(pkt), 24)], allocs)
		}
	}
}
