// Package decap validates outer IPv4 packets, exactly as a raw socket
// delivers them, and strips their IP-in-IP (RFC 2003) or GRE (RFC 2784,
// RFC 2890) headers. Stripping moves an offset: the inner packet is returned
// as a range of the same buffer. It never allocates and never panics,
// whatever the bytes.
//
// Parse does the checks that need no tunnel and yields the demultiplexing
// key; the engine finds the tunnel, whose Receiver then applies its policy
// (key, required checksum, sequence numbers). Every drop has a Reason.
// DecapECN applies RFC 6040 to the inner header at the egress.
//
// Parse does not verify the outer IPv4 header checksum: the kernel drops
// packets whose header checksum is wrong before any raw socket sees them.
package decap

import (
	"github.com/gretun/gretun/header"
)

// Kind says what a valid packet carries.
type Kind uint8

const (
	// Data is an inner IPv4 or IPv6 packet for the TUN device.
	Data Kind = iota
	// Keepalive is a returned GRE keepalive (protocol type 0); its payload
	// is the keepalive layer's business.
	Keepalive
	// Reflect is another router's keepalive probe: an inner GRE keepalive
	// (protocol type 0) from our outer destination back to our outer
	// source, to be sent straight back out of the underlay rather than
	// through the TUN (see PrepareReflection).
	Reflect
)

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Keepalive:
		return "keepalive"
	case Reflect:
		return "reflect"
	}
	return "unknown"
}

// Packet is what Parse learns about one outer packet.
type Packet struct {
	Proto    uint8   // outer protocol: 4 (IPIP) or 47 (GRE)
	Src, Dst [4]byte // outer source and destination
	TOS      uint8   // outer TOS, for ECN decapsulation
	GREFlags uint16  // flags of the GRE header (0 for IPIP)
	Key      uint32  // GRE key when GREFlags has GREFlagKey
	Seq      uint32  // GRE sequence number when GREFlags has GREFlagSeq
	Type     uint16  // EtherType carried: IPv4, IPv6 or 0 for keepalive
	Kind     Kind
	Start    int // the inner packet (or keepalive payload) is pkt[Start:End]
	End      int
}

// HasKey reports whether the packet carried a GRE key.
func (p *Packet) HasKey() bool { return p.GREFlags&header.GREFlagKey != 0 }

// Parse validates the outer headers of pkt and fills p. A packet it accepts
// still needs its tunnel's Receiver.Accept. When it drops a packet whose
// outer header was sound, p.Proto, Src, Dst and the GRE key are still set,
// so the drop can be counted on the tunnel it was meant for.
func Parse(pkt []byte, p *Packet) Reason {
	*p = Packet{}
	if len(pkt) < header.IPv4MinLen {
		return Truncated
	}
	ip := header.IPv4(pkt)
	if ip.Version() != 4 {
		return OuterVersion
	}
	hl := ip.HeaderLen()
	if hl < header.IPv4MinLen || hl > len(pkt) {
		return OuterHeaderLen
	}
	total := ip.TotalLen()
	if total < hl || total > len(pkt) {
		return OuterLength
	}
	if ip.IsFragment() {
		return OuterFragment
	}
	pkt = pkt[:total] // ignore link-layer padding
	p.Proto, p.Src, p.Dst, p.TOS = ip.Protocol(), ip.Src(), ip.Dst(), ip.TOS()
	off := hl
	switch p.Proto {
	case header.ProtoIPIP:
		p.Type = header.EtherTypeIPv4
	case header.ProtoGRE:
		r := parseGRE(pkt, off, p)
		if r != OK {
			return r
		}
		off += header.GRELen(p.GREFlags)
		if p.Type == header.EtherTypeKeepalive {
			p.Kind, p.Start, p.End = Keepalive, off, total
			return OK
		}
	default:
		return OuterProtocol
	}
	end, r := checkInner(pkt[off:], p.Type)
	if r != OK {
		return r
	}
	p.Start, p.End = off, off+end
	if p.Proto == header.ProtoGRE && isReflection(pkt[p.Start:p.End], p) {
		p.Kind = Reflect
	}
	return OK
}

func parseGRE(pkt []byte, off int, p *Packet) Reason {
	if len(pkt)-off < header.GREMinLen {
		return GRETruncated
	}
	g := header.GRE(pkt[off:])
	flags := g.Flags()
	switch g.Version() {
	case 0:
	case header.GREVersionPPTP:
		return GREPPTP
	default:
		return GREVersion
	}
	// RFC 2784 section 2.3: discard when bits 1-5 other than K and S
	// (RFC 2890) are set; ignore bits 6-12.
	if flags&(header.GREFlagRoute|header.GREReserved0Drop) != 0 {
		return GREReserved
	}
	if len(g) < header.GRELen(flags) {
		return GRETruncated
	}
	p.GREFlags = flags
	// Key and sequence number first, so that a packet dropped for its
	// checksum can still be counted on its tunnel.
	if flags&header.GREFlagKey != 0 {
		p.Key = g.Key()
	}
	if flags&header.GREFlagSeq != 0 {
		p.Seq = g.Seq()
	}
	p.Type = g.Protocol()
	if flags&header.GREFlagCsum != 0 {
		// The checksum covers the GRE header and everything after it.
		if header.Checksum(g) != 0 {
			return GREChecksum
		}
	}
	switch p.Type {
	case header.EtherTypeIPv4, header.EtherTypeIPv6, header.EtherTypeKeepalive:
		return OK
	}
	return GREProtocol
}

// checkInner validates the inner IP header against the protocol type and
// returns the inner packet's length (trailing bytes past it are dropped).
func checkInner(inner []byte, etherType uint16) (int, Reason) {
	if len(inner) == 0 {
		return 0, InnerTruncated
	}
	if header.InnerVersionEtherType(inner[0]) != etherType {
		return 0, InnerVersion
	}
	if etherType == header.EtherTypeIPv4 {
		if len(inner) < header.IPv4MinLen {
			return 0, InnerTruncated
		}
		in := header.IPv4(inner)
		hl, total := in.HeaderLen(), in.TotalLen()
		if hl < header.IPv4MinLen || total < hl || total > len(inner) {
			return 0, InnerLength
		}
		if in.TTL() == 0 {
			return 0, InnerTTLZero
		}
		return total, OK
	}
	if len(inner) < header.IPv6HeaderLen {
		return 0, InnerTruncated
	}
	total := header.IPv6HeaderLen + header.IPv6(inner).PayloadLen()
	if total > len(inner) || total == header.IPv6HeaderLen && header.IPv6(inner).NextHeader() == 0 {
		// Jumbograms (payload length 0 with a hop-by-hop header) are not tunnelled.
		return 0, InnerLength
	}
	return total, OK
}

// isReflection reports whether inner is a Cisco keepalive probe from the far
// end: an IPv4 GRE packet addressed from our outer destination (this host)
// back to the outer source (the prober) whose own GRE header carries
// protocol type 0. Only such a probe is reflected, and what is reflected is
// a keepalive reply, which the prober does not reflect again: a packet
// nesting GRE inside GRE bounces at most once. Anything else (inner GRE
// carrying IP, say) is data for the host, which routes it as it would any
// packet.
func isReflection(inner []byte, p *Packet) bool {
	if p.Type != header.EtherTypeIPv4 {
		return false
	}
	in := header.IPv4(inner)
	if in.Protocol() != header.ProtoGRE || in.Src() != p.Dst || in.Dst() != p.Src {
		return false
	}
	g := header.GRE(inner[in.HeaderLen():])
	if len(g) < header.GREMinLen {
		return false
	}
	flags := g.Flags()
	return g.Version() == 0 && flags&(header.GREFlagRoute|header.GREReserved0Drop) == 0 &&
		len(g) >= header.GRELen(flags) && g.Protocol() == header.EtherTypeKeepalive
}

// PrepareReflection readies a keepalive probe's inner packet (Kind
// Reflect, pkt[Start:End]) to be sent back out of the underlay as a router
// forwarding it would: it refuses a packet whose TTL would expire here
// (ReflectTTL) and one with IP options or fragment bits (ReflectHeader),
// which would otherwise leave this host, with IP_HDRINCL, exactly as the
// sender chose them; a real probe has neither. It decrements the TTL and
// updates the header checksum in place.
func PrepareReflection(inner []byte) Reason {
	if len(inner) < header.IPv4MinLen {
		return InnerTruncated
	}
	ip := header.IPv4(inner)
	if ip.HeaderLen() != header.IPv4MinLen || ip.IsFragment() {
		return ReflectHeader
	}
	if ip.TTL() <= 1 {
		return ReflectTTL
	}
	ip.SetTTL(ip.TTL() - 1)
	ip.UpdateChecksum()
	return OK
}

// DecapECN applies RFC 6040 section 4.2 at the egress: the inner ECN field
// becomes the combination of the inner and outer fields in its Figure 4.
// An outer Congestion Experienced mark is carried over to an ECN-capable
// inner packet, and an outer ECT(1) over an inner ECT(0). It reports false
// when the outer packet is CE but the inner one is not ECN-capable (or is
// not an IP header it can read): RFC 6040 says to drop it. It updates the
// inner IPv4 header checksum incrementally (RFC 1624).
func DecapECN(inner []byte, outerTOS uint8) bool {
	const (
		notECT = 0x00
		ect1   = 0x01
		ect0   = 0x02
		ce     = 0x03
	)
	outer := outerTOS & header.ECNMask
	if outer == notECT || outer == ect0 {
		return true // nothing to carry over, whatever the inner is
	}
	var in uint8
	switch {
	case len(inner) >= header.IPv4MinLen && inner[0]>>4 == 4:
		in = inner[header.IPv4TOS] & header.ECNMask
	case len(inner) >= header.IPv6HeaderLen && inner[0]>>4 == 6:
		in = header.IPv6(inner).TrafficClass() & header.ECNMask
	default:
		return outer != ce
	}
	var set uint8
	switch {
	case in == notECT:
		return outer != ce
	case outer == ce && in != ce:
		set = ce
	case outer == ect1 && in == ect0:
		set = ect1
	default:
		return true
	}
	if inner[0]>>4 == 6 {
		inner[1] = inner[1]&^(header.ECNMask<<4) | set<<4
		return true
	}
	ip := header.IPv4(inner)
	old := uint16(inner[0])<<8 | uint16(inner[header.IPv4TOS])
	tos := inner[header.IPv4TOS]&^header.ECNMask | set
	ip.SetTOS(tos)
	ip.SetChecksum(header.Adjust(ip.Checksum(), old, uint16(inner[0])<<8|uint16(tos)))
	return true
}
