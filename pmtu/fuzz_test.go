package pmtu

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzTooBig checks properties of TooBig on any bytes: it never panics,
// never touches inner, writes nothing when it refuses, and when it
// answers, the answer is a well-formed error of at most the family's
// maximum length, sent to the packet's source, quoting its start, with
// checksums that verify; building it in place gives the same bytes.
// Check, which builds nothing, decides the same as TooBig.
// Seeds are in testdata/fuzz/FuzzTooBig.
func FuzzTooBig(f *testing.F) {
	f.Add(udp4(f, 1500, true), 1476, false)
	f.Add(udp6(f, 1500), 1400, true)
	f.Fuzz(func(t *testing.T, inner []byte, mtu int, v6 bool) {
		src := tunnel4
		hdr, maxLen := HeaderLen4, MaxLen4
		if v6 {
			src, hdr, maxLen = tunnel6, HeaderLen6, MaxLen6
		}
		orig := append([]byte(nil), inner...)
		dst := bytes.Repeat([]byte{0xee}, 1400)
		n, err := TooBig(dst, inner, mtu, src)
		if !bytes.Equal(inner, orig) {
			t.Fatalf("TooBig modified inner")
		}
		if cerr := Check(inner, mtu); cerr != err && !(cerr == nil && err == ErrSource) {
			t.Fatalf("Check says %v, TooBig %v", cerr, err)
		}
		if err != nil {
			if n != 0 || !bytes.Equal(dst, bytes.Repeat([]byte{0xee}, 1400)) {
				t.Fatalf("refused with %v but returned %d or wrote into dst", err, n)
			}
			return
		}
		if n < hdr || n > maxLen {
			t.Fatalf("length %d outside [%d, %d]", n, hdr, maxLen)
		}
		out := dst[:n]
		if !bytes.Equal(out[hdr:], inner[:n-hdr]) {
			t.Fatalf("quote is not the start of the packet")
		}
		if v6 {
			to := netip.AddrFrom16([16]byte(inner[8:24]))
			if out[0]>>4 != 6 || out[6] != 58 || out[40] != 2 || !bytes.Equal(out[24:40], inner[8:24]) {
				t.Fatalf("not a Packet Too Big to the sender: %x", out[:48])
			}
			if int(binary.BigEndian.Uint16(out[4:])) != n-40 || binary.BigEndian.Uint32(out[44:]) < MinMTU6 {
				t.Fatalf("bad payload length or MTU: %x", out[:48])
			}
			if c := rfc1071(pseudo(src, to, 58, n-40), out[40:]); c != 0 {
				t.Fatalf("ICMPv6 checksum does not verify")
			}
		} else {
			if out[0] != 0x45 || out[9] != 1 || out[20] != 3 || out[21] != 4 || !bytes.Equal(out[16:20], inner[12:16]) {
				t.Fatalf("not a Fragmentation Needed to the sender: %x", out[:28])
			}
			if int(binary.BigEndian.Uint16(out[2:])) != n || binary.BigEndian.Uint16(out[26:]) < MinMTU4 {
				t.Fatalf("bad total length or MTU: %x", out[:28])
			}
			if rfc1071(out[:20]) != 0 || rfc1071(out[20:]) != 0 {
				t.Fatalf("checksums do not verify")
			}
		}
		// In place: the same bytes from the buffer the packet was read into.
		buf := make([]byte, hdr+len(inner))
		copy(buf[hdr:], inner)
		m, err := TooBig(buf, buf[hdr:], mtu, src)
		if err != nil || !bytes.Equal(buf[:m], out) {
			t.Fatalf("in place: %v, or different bytes", err)
		}
	})
}

// FuzzClampMSS checks properties of ClampMSS on any bytes: it never
// panics, reports exactly whether it changed the packet, changes at
// most the two MSS bytes and the two checksum bytes, only inside the
// TCP header, keeps a valid checksum valid, and is idempotent. Seeds
// are in testdata/fuzz/FuzzClampMSS.
func FuzzClampMSS(f *testing.F) {
	f.Add(syn(f, false, false, 0, oMSS1460, oSACKOK, oTS, oNOP, oWS), uint16(1436))
	f.Add(syn(f, true, true, 0, oNOP, oMSS1460, oNOP, oNOP, oNOP), uint16(1200))
	f.Fuzz(func(t *testing.T, pkt []byte, mss uint16) {
		orig := append([]byte(nil), pkt...)
		changed := ClampMSS(pkt, mss)
		var diff []int
		for i := range pkt {
			if pkt[i] != orig[i] {
				diff = append(diff, i)
			}
		}
		if !changed {
			if len(diff) != 0 {
				t.Fatalf("reported no change but changed bytes %v", diff)
			}
			return
		}
		if len(diff) == 0 || len(diff) > 4 {
			t.Fatalf("reported a change, changed bytes %v", diff)
		}
		// Where this test can find the TCP header by itself (no IPv6
		// extension headers), every change lies inside it, and a
		// checksum that verified before verifies after.
		if start, end, src, dst, ok := simpleTCP(orig); ok {
			for _, i := range diff {
				if i < start || i >= end {
					t.Fatalf("changed byte %d outside the TCP header [%d, %d)", i, start, end)
				}
			}
			segEnd := tcpEnd(orig)
			ph := pseudo(src, dst, 6, segEnd-start)
			if rfc1071(ph, orig[start:segEnd]) == 0 && rfc1071(ph, pkt[start:segEnd]) != 0 {
				t.Fatalf("checksum verified before clamping, not after")
			}
		}
		again := append([]byte(nil), pkt...)
		if ClampMSS(again, mss) || !bytes.Equal(again, pkt) {
			t.Fatalf("second ClampMSS changed the packet")
		}
	})
}

// simpleTCP finds the TCP header of an IPv4 packet or of an IPv6 packet
// without extension headers, independently of the package's parser.
func simpleTCP(p []byte) (start, end int, src, dst netip.Addr, ok bool) {
	switch {
	case len(p) >= 20 && p[0]>>4 == 4 && p[9] == 6:
		start = int(p[0]&0x0f) * 4
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	case len(p) >= 40 && p[0]>>4 == 6 && p[6] == 6:
		start = 40
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	default:
		return 0, 0, src, dst, false
	}
	if start+13 > len(p) {
		return 0, 0, src, dst, false
	}
	return start, start + int(p[start+12]>>4)*4, src, dst, true
}

// tcpEnd is where the IP length fields say the segment ends.
func tcpEnd(p []byte) int {
	if p[0]>>4 == 4 {
		return int(binary.BigEndian.Uint16(p[2:]))
	}
	return 40 + int(binary.BigEndian.Uint16(p[4:]))
}
