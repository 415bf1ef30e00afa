package encap_test

import (
	"testing"

	"github.com/gretun/gretun/encap"
)

// TestAllocs is the allocation budget of the sending hot path: none.
func TestAllocs(t *testing.T) {
	for _, cfg := range allConfigs() {
		e, err := encap.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, inner := range [][]byte{innerIPv4(1400), in6} {
			buf := append(make([]byte, encap.Headroom), inner...)
			if cfg.Mode == encap.ModeIPIP && inner[0]>>4 == 6 || cfg.Mode == encap.ModeIP6 && inner[0]>>4 == 4 {
				continue
			}
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := e.Encap(buf, encap.Headroom); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Encap %+v: %v allocations per packet, want 0", cfg, allocs)
			}
		}
	}
	// GRE and IPIP inside UDP, the source port per flow.
	for _, cfg := range []encap.Config{
		{Mode: encap.ModeGRE, Local: local, Remote: remote, UDP: true, DstPort: 4754, UDPChecksumPartial: true, HasKey: true},
		{Mode: encap.ModeIPIP, Local: local, Remote: remote, UDP: true, DstPort: 5555},
	} {
		e, err := encap.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		buf := append(make([]byte, encap.HeadroomMax), innerIPv4(1400)...)
		if allocs := testing.AllocsPerRun(100, func() { _, _ = e.Encap(buf, encap.HeadroomMax) }); allocs != 0 {
			t.Errorf("Encap %+v: %v allocations per packet, want 0", cfg, allocs)
		}
	}
	// Errors are sentinels: dropping a packet allocates nothing either.
	e, _ := encap.New(encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote})
	buf := append(make([]byte, encap.Headroom), in6...)
	if allocs := testing.AllocsPerRun(100, func() { _, _ = e.Encap(buf, encap.Headroom) }); allocs != 0 {
		t.Errorf("Encap error path: %v allocations, want 0", allocs)
	}

	pkt := innerIPv4(4000)
	pkt[6] = 0 // no DF
	fixIPv4Checksum(pkt)
	frags := fragBufs(8, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := encap.Fragment(pkt, 1500, frags); err != nil || n != 3 {
			t.Fatalf("Fragment: %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Fragment: %v allocations, want 0", allocs)
	}
}
