package decap_test

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/go-cmp/cmp"
	"github.com/gretun/gretun/internal/refsum"
	"github.com/gretun/gretun/internal/testpkt"
)

// addrCmp lets cmp.Diff compare the netip.Addr fields of a decap.Packet.
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// Tunnel endpoints as the receiver sees them: packets come from the remote
// end (192.0.2.2) to this host (192.0.2.1).
var (
	remoteIP = [4]byte{192, 0, 2, 2}
	localIP  = [4]byte{192, 0, 2, 1}
	// remoteAddr and localAddr are the same addresses as decap.Packet holds them.
	remoteAddr = netip.AddrFrom4(remoteIP)
	localAddr  = netip.AddrFrom4(localIP)
)

// in4 and in6 are the inner packets encap's tests use too.
var in4, in6, frame = testpkt.In4, testpkt.In6, testpkt.Frame

// rfc1071 is the slow, obvious RFC 1071 checksum: an independent reference.
var rfc1071 = refsum.RFC1071

// greHdr is a GRE header with the optional fields its flags announce.
func greHdr(flags, proto uint16, key, seq uint32) []byte {
	g := binary.BigEndian.AppendUint16(nil, flags)
	g = binary.BigEndian.AppendUint16(g, proto)
	if flags&0x8000 != 0 {
		g = append(g, 0, 0, 0, 0)
	}
	if flags&0x2000 != 0 {
		g = binary.BigEndian.AppendUint32(g, key)
	}
	if flags&0x1000 != 0 {
		g = binary.BigEndian.AppendUint32(g, seq)
	}
	return g
}

// build is an outer packet remote -> local of protocol proto carrying
// the (GRE header and) payload parts, with the total length and both
// checksums right. Tests break it afterwards.
func build(proto byte, parts ...[]byte) []byte {
	p := []byte{
		0x45, 0x00, 0, 0, // version 4, IHL 5, TOS 0, total length below
		0x00, 0x01, 0x40, 0x00, // ID 1, DF
		0x40, proto, 0, 0, // TTL 64, protocol, checksum below
	}
	p = append(p, remoteIP[:]...)
	p = append(p, localIP[:]...)
	for _, part := range parts {
		p = append(p, part...)
	}
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	fixIP(p)
	if proto == 47 && len(p) >= 24 && p[20]&0x80 != 0 && len(p) >= 28 {
		fixGRE(p)
	}
	return p
}

// fixIP recomputes the outer IPv4 header checksum (IHL as the packet says).
func fixIP(p []byte) []byte {
	hl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], rfc1071(p[:hl]))
	return p
}

// fixGRE recomputes the GRE checksum of a 20-byte-header outer packet.
func fixGRE(p []byte) []byte {
	g := p[20:binary.BigEndian.Uint16(p[2:])]
	g[4], g[5] = 0, 0
	binary.BigEndian.PutUint16(g[4:], rfc1071(g))
	return p
}

// with returns a copy of b with f applied.
func with(b []byte, f func(p []byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
