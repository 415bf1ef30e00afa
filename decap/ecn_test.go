package decap_test

import (
	"fmt"
	"testing"

	"github.com/gretun/gretun/decap"
)

const (
	notECT = 0
	ect1   = 1
	ect0   = 2
	ce     = 3
)

var ecnName = [4]string{"Not-ECT", "ECT(1)", "ECT(0)", "CE"}

// rfc6040 is Figure 4 of RFC 6040 section 4.2, indexed [inner][outer]:
// the ECN field of the packet leaving the decapsulator, or -1 for drop.
var rfc6040 = [4][4]int{
	notECT: {notECT: notECT, ect1: notECT, ect0: notECT, ce: -1},
	ect1:   {notECT: ect1, ect1: ect1, ect0: ect1, ce: ce},
	ect0:   {notECT: ect0, ect1: ect1, ect0: ect0, ce: ce},
	ce:     {notECT: ce, ect1: ce, ect0: ce, ce: ce},
}

func TestDecapECN(t *testing.T) {
	const dscp = 0xb8 // EF, which must survive
	for in := 0; in < 4; in++ {
		for out := 0; out < 4; out++ {
			want := rfc6040[in][out]
			t.Run(fmt.Sprintf("inner %s outer %s", ecnName[in], ecnName[out]), func(t *testing.T) {
				// IPv4: the header checksum must still verify.
				p4 := with(in4, func(p []byte) []byte { p[1] = dscp | byte(in); return p })
				fixIP(p4)
				ok := decap.DecapECN(p4, 0x28|byte(out))
				if ok != (want >= 0) {
					t.Fatalf("IPv4: DecapECN = %v, want forward = %v", ok, want >= 0)
				}
				if ok {
					if got := int(p4[1] & 3); got != want {
						t.Errorf("IPv4: inner ECN %s, want %s", ecnName[got], ecnName[want])
					}
					if p4[1]&^3 != dscp {
						t.Errorf("IPv4: DSCP changed to %#x", p4[1]&^3)
					}
					if rfc1071(p4[:20]) != 0 {
						t.Errorf("IPv4: header checksum no longer verifies")
					}
				}
				// IPv6: the traffic class straddles bytes 0 and 1.
				p6 := with(in6, func(p []byte) []byte {
					tc := dscp | byte(in)
					p[0], p[1] = 0x60|tc>>4, tc<<4|0x0a // flow label bits 0xa.... kept
					return p
				})
				ok = decap.DecapECN(p6, 0x28|byte(out))
				if ok != (want >= 0) {
					t.Fatalf("IPv6: DecapECN = %v, want forward = %v", ok, want >= 0)
				}
				if ok {
					tc := p6[0]<<4 | p6[1]>>4
					if got := int(tc & 3); got != want {
						t.Errorf("IPv6: inner ECN %s, want %s", ecnName[got], ecnName[want])
					}
					if tc&^3 != dscp || p6[0]>>4 != 6 || p6[1]&0x0f != 0x0a {
						t.Errorf("IPv6: version, DSCP or flow label changed: % x", p6[:2])
					}
				}
			})
		}
	}
}

// TestDecapECNBadInput: bytes that are no IP header never panic; a CE mark
// that cannot be carried over means drop.
func TestDecapECNBadInput(t *testing.T) {
	for _, b := range [][]byte{nil, {0x45}, in4[:19], {0x60, 0x30}, in6[:39], {0x55, 0x03, 0, 0}} {
		for out := byte(0); out < 4; out++ {
			got := decap.DecapECN(append([]byte(nil), b...), out)
			if got != (out != ce) {
				t.Errorf("DecapECN(% x, %s) = %v", b, ecnName[out], got)
			}
		}
	}
}

// TestDecapECNFrame: the IP packet inside a gretap frame gets RFC 6040's
// combination, and a frame carrying no IP (ARP) is not ECN-capable: dropped
// under an outer CE, untouched otherwise.
func TestDecapECNFrame(t *testing.T) {
	ipFrame := append([]byte{0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, in4...)
	ipFrame[14+1] = ect0
	ipFrame[14+10], ipFrame[14+11] = 0x28, 0xdb // header checksum with ECT(0)
	if !decap.DecapECNFrame(ipFrame, ce) || ipFrame[14+1]&3 != ce {
		t.Errorf("IPv4 in a frame under outer CE: ECN %d, want CE", ipFrame[14+1]&3)
	}
	if rfc1071(ipFrame[14:34]) != 0 {
		t.Errorf("inner header checksum not adjusted")
	}
	arp := append([]byte(nil), frame...)
	if decap.DecapECNFrame(arp, ce) {
		t.Errorf("ARP under outer CE accepted")
	}
	if !decap.DecapECNFrame(arp, ect0) || string(arp) != string(frame) {
		t.Errorf("ARP under outer ECT(0) refused or changed")
	}
}
