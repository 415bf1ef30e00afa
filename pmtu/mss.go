package pmtu

import (
	"encoding/binary"

	"github.com/gretun/gretun/header"
)

// MSSFor returns the TCP MSS that fits a path MTU of mtu: the MTU less
// a 20-byte IPv4 or 40-byte IPv6 header and a 20-byte TCP header, as
// RFC 879 and RFC 6691 §2 define it (options are taken out of the MSS by
// the sender). mtu is first raised to the family's minimum MTU: an IPv6
// packet of up to 1280 bytes crosses a narrower tunnel fragmented
// (RFC 2473 §7.1), so IPv6 never needs an MSS below 1220.
func MSSFor(mtu int, ipv6 bool) uint16 {
	hdr, floor := header.IPv4MinLen+header.TCPMinLen, MinMTU4
	if ipv6 {
		hdr, floor = header.IPv6HeaderLen+header.TCPMinLen, MinMTU6
	}
	return uint16(min(max(mtu, floor), 0xffff) - hdr)
}

// ClampMSS lowers the Maximum Segment Size option of a TCP SYN (or
// SYN-ACK) in the IPv4 or IPv6 packet pkt to mss when it announces more,
// fixing the TCP checksum incrementally (RFC 1624), and reports whether
// it changed pkt. This is what Linux's TCPMSS target does with
// --set-mss: the peers then never send segments that need fragmenting
// in the tunnel. A SYN without the option is left alone: its peer
// assumes 536 (RFC 9293 §3.7.1), which fits any tunnel.
//
// pkt must carry a complete TCP checksum, not a partial one left for
// checksum offload; wireguard-go's tun completes those when it reads.
// Any bytes are safe: a packet that is not a well-formed first segment
// of a TCP SYN is not touched, and at most the four bytes of the MSS
// value and the checksum are written. It never allocates.
func ClampMSS(pkt []byte, mss uint16) bool {
	if len(pkt) == 0 {
		return false
	}
	var tcp header.TCP
	switch header.IPVersion(pkt) {
	case 4:
		p, ihl, ok := ipv4(pkt)
		if !ok || p.Protocol() != header.ProtoTCP || p.FlagsFrag()&header.IPv4FragOffset != 0 {
			return false
		}
		tcp = header.TCP(p[ihl:])
	case 6:
		p, ok := ipv6(pkt)
		if !ok {
			return false
		}
		proto, off, first, ok := upper(p)
		if !ok || !first || proto != header.ProtoTCP {
			return false
		}
		tcp = header.TCP(p[off:])
	default:
		return false
	}
	if len(tcp) < header.TCPMinLen || tcp.Flags()&header.TCPFlagSYN == 0 {
		return false
	}
	at, ok := tcp.MSSOffset() // offset of the value in tcp
	if !ok {
		return false
	}
	old := binary.BigEndian.Uint16(tcp[at:])
	if old <= mss {
		return false
	}
	binary.BigEndian.PutUint16(tcp[at:], mss)
	// The checksum sums 16-bit words aligned to the start of the TCP
	// header; a value at an odd offset straddles two words and contributes
	// its bytes swapped (RFC 1071 §2(A)).
	if at%2 == 1 {
		old, mss = swap(old), swap(mss)
	}
	tcp.SetChecksum(header.Adjust(tcp.Checksum(), old, mss))
	return true
}

func swap(v uint16) uint16 { return v<<8 | v>>8 }
