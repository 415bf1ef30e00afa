package header

import "testing"

func TestIPv6View(t *testing.T) {
	b := IPv6(make([]byte, 48))
	b[0], b[1] = 0x6b, 0x90 // traffic class 0xb9
	b[5], b[6], b[7] = 8, 58, 33
	if !b.IsValid() || b.TrafficClass() != 0xb9 || b.PayloadLen() != 8 || b.NextHeader() != 58 || b.HopLimit() != 33 {
		t.Errorf("IPv6 accessors disagree with the bytes")
	}
	if IPv6(b[:39]).IsValid() {
		t.Error("39 bytes is not an IPv6 header")
	}
}
