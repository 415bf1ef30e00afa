package header

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gretun/gretun/internal/refsum"
)

func TestUDPView(t *testing.T) {
	b := UDP{
		0xc0, 0x00, 0x12, 0x92, // source port 49152, destination port 4754
		0x00, 0x0c, 0xab, 0xcd, // length 12, checksum
		0xde, 0xad, 0xbe, 0xef, // payload
		0x00, 0x00, // link-layer padding
	}
	if !b.IsValid() || b.SrcPort() != 0xc000 || b.DstPort() != UDPPortGRE || b.Length() != 12 || b.Checksum() != 0xabcd ||
		!bytes.Equal(b.Payload(), []byte{0xde, 0xad, 0xbe, 0xef}) {
		t.Errorf("UDP accessors disagree with the bytes")
	}
	e := make(UDP, UDPLen)
	e.Encode(&UDPFields{SrcPort: 0xc000, DstPort: UDPPortGRE, Length: 12, Checksum: 0xabcd})
	if !bytes.Equal(e, b[:UDPLen]) {
		t.Errorf("Encode = % x, want % x", []byte(e), []byte(b[:UDPLen]))
	}
	for _, bad := range []UDP{nil, b[:7], {0, 0, 0, 0, 0, 7, 0, 0}, b[:11]} {
		if bad.IsValid() {
			t.Errorf("IsValid(% x) = true", []byte(bad))
		}
	}
}

// TestUDPChecksum checks ComputeChecksum against a plain RFC 1071 sum over
// the pseudo-header and datagram, over IPv4 and IPv6, and that a sum of 0
// is sent as 0xffff (RFC 768).
func TestUDPChecksum(t *testing.T) {
	for _, c := range []struct{ src, dst string }{{"192.0.2.1", "192.0.2.2"}, {"2001:db8::a", "2001:db8::b"}} {
		src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
		u := UDP{0xc0, 0x00, 0x12, 0x92, 0, 13, 0x55, 0x55, 1, 2, 3, 4, 5}
		addrs := append(src.AsSlice(), dst.AsSlice()...)
		u.SetChecksum(u.ComputeChecksum(PseudoSum(addrs, ProtoUDP, u.Length())))
		var pseudo []byte
		pseudo = append(pseudo, addrs...)
		if src.Is4() {
			pseudo = append(pseudo, 0, ProtoUDP, 0, 13)
		} else {
			pseudo = append(pseudo, 0, 0, 0, 13, 0, 0, 0, ProtoUDP)
		}
		if got := refsum.RFC1071(append(pseudo, u...)); got != 0 {
			t.Errorf("%s: checksum %#04x does not verify (%#04x)", c.src, u.Checksum(), got)
		}
		u.SetLength(12)
		if u.Length() != 12 {
			t.Errorf("SetLength")
		}
	}
	// A datagram whose sum is 0xffff: its checksum 0 goes out as 0xffff.
	u := UDP{0, 0, 0, 0, 0, 8, 0, 0}
	if got := u.ComputeChecksum(0xffff - 8); got != 0xffff {
		t.Errorf("zero checksum sent as %#04x, want 0xffff", got)
	}
}
