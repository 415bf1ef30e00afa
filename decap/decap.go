// Package decap validates outer packets, exactly as an underlay delivers
// them, and strips their IP-in-IP (RFC 2003, RFC 2473, RFC 4213's 6in4)
// or GRE (RFC 2784, RFC 2890) headers. Stripping moves an offset: the
// inner packet is returned as a range of the same buffer. It never allocates and never
// panics, whatever the bytes.
//
// There is one entry point per underlay: Parse for an outer IPv4 header
// (a raw IPv4 socket), Parse6 for an outer IPv6 header, and ParseGRE for a
// GRE header whose outer IP and UDP headers a socket has already stripped
// (GRE-in-UDP, RFC 8086). They do the checks that need no tunnel and yield
// the demultiplexing key; the engine finds the tunnel, whose Receiver then
// applies its policy (key, required checksum, sequence numbers). Every
// drop has a Reason. DecapECN applies RFC 6040 to the inner header at the
// egress.
//
// Parse does not verify the outer IPv4 header checksum: the kernel drops
// packets whose header checksum is wrong before any raw socket sees them.
// Of IPv6 extension headers Parse6 skips hop-by-hop and destination
// options (unless an option it does not know says to discard), routing
// headers with no segments left and an atomic fragment header; it records
// a tunnel encapsulation limit (RFC 2473), which binds a later entry point
// rather than this exit: a received packet is not dropped for it (the
// engine honours the limits of inner packets it encapsulates, see
// encap.ErrEncapLimit).
package decap

import (
	"encoding/binary"
	"net/netip"

	"github.com/gretun/gretun/header"
)

// Kind says what a valid packet carries.
type Kind uint8

const (
	// Data is an inner IPv4 or IPv6 packet for a TUN device, or an
	// Ethernet frame (Type 0x6558) for a TAP device.
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

// Packet is what Parse, Parse6 or ParseGRE learn about one outer packet.
type Packet struct {
	Src, Dst netip.Addr // outer source and destination, IPv4 or IPv6
	Proto    uint8      // tunnel protocol: 4 (IPv4 in IP), 41 (IPv6 in IP) or 47 (GRE)
	TOS      uint8      // outer TOS / traffic class, for ECN decapsulation
	GREFlags uint16     // flags of the GRE header (0 for IPIP)
	Key      uint32     // GRE key when GREFlags has GREFlagKey
	Seq      uint32     // GRE sequence number when GREFlags has GREFlagSeq
	// Type is the EtherType carried: IPv4, IPv6, 0x6558 (Ethernet) or 0
	// for a keepalive.
	Type uint16
	Kind Kind
	// EncapLimit is the outer IPv6 tunnel encapsulation limit (RFC 2473)
	// when HasEncapLimit.
	EncapLimit    uint8
	HasEncapLimit bool
	Start         int // the inner packet (or keepalive payload) is pkt[Start:End]
	End           int
	// Port is the UDP destination port of a packet ParseUDP took (encap
	// fou), a part of its demultiplexing key; 0 for GRE and IPIP straight
	// over IP.
	Port uint16
}

// HasKey reports whether the packet carried a GRE key.
func (p *Packet) HasKey() bool { return p.GREFlags&header.GREFlagKey != 0 }

// Parse validates the outer IPv4 header of pkt and the GRE header, IPv4
// (4) or IPv6 (41) packet after it, and fills p. A packet it accepts still
// needs its tunnel's Receiver.Accept. When it drops a packet whose
// outer header was sound, p.Proto, Src, Dst and the GRE key are still set,
// so the drop can be counted on the tunnel it was meant for.
func Parse(pkt []byte, p *Packet) Reason {
	pkt, hl, r := p.outer4(pkt)
	if r != OK {
		return r
	}
	return p.payload(pkt, hl)
}

// payload validates what follows the outer IP (or UDP) header at pkt[off:]
// as p.Proto says: a GRE header, or at once the inner IPv4 (4) or IPv6 (41:
// RFC 2473 over IPv6, RFC 4213's 6in4 over IPv4) packet.
func (p *Packet) payload(pkt []byte, off int) Reason {
	switch p.Proto {
	case header.ProtoGRE:
		return ParseGRE(pkt, off, p)
	case header.ProtoIPIP:
		p.Type = header.EtherTypeIPv4
	case header.ProtoIPv6:
		p.Type = header.EtherTypeIPv6
	default:
		return OuterProtocol
	}
	return p.inner(pkt, off)
}

// ParseUDP is Parse for GRE or IPIP inside UDP (encap fou; GRE-in-UDP,
// RFC 8086): an outer IPv4 or IPv6 header, a UDP header, and then a GRE
// header (proto 47) or at once the inner IPv4 (proto 4) or IPv6 (proto
// 41) packet, as the UDP port says, which the caller knows: a FOU port
// carries one protocol. It sets p.Port to the UDP destination port and
// p.Proto to proto. The UDP checksum is not verified: the kernel's UDP
// socket did that.
func ParseUDP(pkt []byte, proto uint8, p *Packet) Reason {
	var hl int
	var r Reason
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		if len(pkt) < header.IPv6HeaderLen {
			return p.reset(Truncated)
		}
		var end int
		hl, end, r = parseIPv6(pkt, p)
		pkt = pkt[:end]
	} else {
		pkt, hl, r = p.outer4(pkt)
	}
	if r != OK {
		return r
	}
	if p.Proto != header.ProtoUDP {
		return OuterProtocol
	}
	u := header.UDP(pkt[hl:])
	if !u.IsValid() {
		return UDPLength
	}
	p.Port, p.Proto = u.DstPort(), proto
	return p.payload(pkt[:hl+int(u.Length())], hl+header.UDPLen)
}

// outer4 checks the outer IPv4 header of pkt and sets p's addresses,
// protocol and TOS, clearing the rest. It returns pkt without link-layer
// padding and the header length.
func (p *Packet) outer4(pkt []byte) ([]byte, int, Reason) {
	if len(pkt) < header.IPv4MinLen {
		return nil, 0, p.reset(Truncated)
	}
	ip := header.IPv4(pkt)
	if ip.Version() != 4 {
		return nil, 0, p.reset(OuterVersion)
	}
	hl := ip.HeaderLen()
	if hl < header.IPv4MinLen || hl > len(pkt) {
		return nil, 0, p.reset(OuterHeaderLen)
	}
	total := ip.TotalLen()
	if total < hl || total > len(pkt) {
		return nil, 0, p.reset(OuterLength)
	}
	if ip.IsFragment() {
		return nil, 0, p.reset(OuterFragment)
	}
	pkt = pkt[:total] // ignore link-layer padding
	p.Src, p.Dst = ip.SrcAddr(), ip.DstAddr()
	p.clearAfterAddrs()
	p.Proto, p.TOS = ip.Protocol(), ip.TOS()
	return pkt, hl, OK
}

// reset clears p for a packet dropped before anything was learnt about it
// (p.Proto 0: not even a sound outer header).
func (p *Packet) reset(r Reason) Reason {
	*p = Packet{}
	return r
}

// clearAfterAddrs zeroes every field but the addresses, which Parse has
// just set: clearing them too would cost a second write of their pointers.
func (p *Packet) clearAfterAddrs() {
	p.Proto, p.TOS, p.GREFlags, p.Key, p.Seq, p.Type, p.Kind = 0, 0, 0, 0, 0, 0, Data
	p.EncapLimit, p.HasEncapLimit, p.Start, p.End, p.Port = 0, false, 0, 0, 0
}

// Parse6 is Parse for an outer IPv6 header, as an underlay that receives
// whole IPv6 packets delivers them: GRE (ip6gre), IPv4 in IPv6 or IPv6 in
// IPv6 (RFC 2473, ip6tnl) after the extension headers it may skip.
func Parse6(pkt []byte, p *Packet) Reason {
	if len(pkt) < header.IPv6HeaderLen {
		return p.reset(Truncated)
	}
	if pkt[0]>>4 != 6 {
		return p.reset(OuterVersion)
	}
	off, end, r := parseIPv6(pkt, p)
	if r != OK {
		return r
	}
	return p.payload(pkt[:end], off)
}

// linuxLimit, under linuxLimitMask, is the destination options header
// Linux's IPv6 tunnels put in every packet (init_tel_txopt): length 0,
// option 4 of length 1, a PadN of length 1; the next header, the limit and
// the padding byte are masked out.
const (
	linuxLimitMask = 0x00_ff_ff_ff_00_ff_ff_00
	linuxLimit     = 0x00_00_04_01_00_01_01_00
)

// maxIPv6Ext bounds the extension headers parseIPv6 walks: a real tunnel
// packet has at most a few.
const maxIPv6Ext = 8

// parseIPv6 checks the outer IPv6 header, skips the extension headers that
// a destination may skip (RFC 8200 section 4), sets p's outer fields and
// returns where the tunnel protocol's header starts and the packet ends.
// A fragment is dropped as OuterFragment, as for IPv4: the kernel
// reassembles before sockets see packets.
func parseIPv6(pkt []byte, p *Packet) (int, int, Reason) {
	ip := header.IPv6(pkt)
	total := header.IPv6HeaderLen + ip.PayloadLen()
	if total == header.IPv6HeaderLen || total > len(pkt) {
		// Payload length 0 is a jumbogram (or nothing at all): not tunnelled.
		return 0, 0, p.reset(OuterLength)
	}
	// The addresses first, the rest cleared after them, as Parse does.
	p.Src, p.Dst = ip.SrcAddr(), ip.DstAddr()
	p.clearAfterAddrs()
	p.TOS = ip.TrafficClass()
	next, off := ip.NextHeader(), header.IPv6HeaderLen
	for i := 0; ; i++ {
		switch next {
		case header.IPv6HopByHop, header.IPv6Routing, header.IPv6Fragment, header.IPv6DestOpts:
		default:
			p.Proto = next
			return off, total, OK
		}
		if i == maxIPv6Ext || total-off < header.IPv6ExtMinLen {
			return 0, 0, OuterHeaderLen
		}
		ext := header.IPv6Ext(pkt[off:total])
		n := ext.Len(next)
		if n > len(ext) {
			return 0, 0, OuterHeaderLen
		}
		switch next {
		case header.IPv6HopByHop:
			if i != 0 { // RFC 8200 section 4.1: only right after the fixed header
				return 0, 0, OuterHeaderLen
			}
			if _, _, ok := ext.Options(n); !ok {
				return 0, 0, OuterHeaderLen
			}
		case header.IPv6DestOpts:
			if n == header.IPv6ExtMinLen && binary.BigEndian.Uint64(ext)&linuxLimitMask == linuxLimit {
				// Linux's ip6gre and ip6tnl send exactly this (the
				// limit, then a PadN of one byte): no walk needed.
				p.EncapLimit, p.HasEncapLimit = ext[4], true
				break
			}
			l, has, ok := ext.Options(n)
			if !ok {
				return 0, 0, OuterHeaderLen
			}
			if has {
				p.EncapLimit, p.HasEncapLimit = l, true
			}
		case header.IPv6Routing:
			// A routing header with segments left names a next hop: the
			// packet is not for us yet (RFC 8200 section 4.4).
			if ext[3] != 0 {
				return 0, 0, OuterProtocol
			}
		case header.IPv6Fragment:
			if ext.FragmentOffset() != 0 || ext.MoreFragments() {
				return 0, 0, OuterFragment
			}
		}
		next, off = ext.NextHeader(), off+n
	}
}

// ParseGRE validates the GRE header at pkt[off:] and the packet it carries,
// up to the end of pkt, and fills p's GRE fields, Type, Kind, Start and
// End, setting p.Proto to GRE. It keeps p's outer addresses and TOS, which
// the caller sets first: Parse from the outer IP header, a UDP underlay
// from the datagram's addresses (GRE-in-UDP, RFC 8086). The tunnel's
// Receiver.Accept still applies.
func ParseGRE(pkt []byte, off int, p *Packet) Reason {
	p.Proto = header.ProtoGRE
	if off < 0 || len(pkt)-off < header.GREMinLen {
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
	n := header.GRELen(flags)
	if len(g) < n {
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
	off += n
	switch p.Type {
	case header.EtherTypeIPv4, header.EtherTypeIPv6:
	case header.EtherTypeKeepalive:
		p.Kind, p.Start, p.End = Keepalive, off, len(pkt)
		return OK
	case header.EtherTypeTEB:
		// An Ethernet frame (gretap): opaque to decap past its header.
		// Only a gretap tunnel takes it (the engine checks the payload
		// against the tunnel's device).
		if len(pkt)-off < header.EthernetHeaderLen {
			return InnerTruncated
		}
		p.Start, p.End = off, len(pkt)
		return OK
	default:
		return GREProtocol
	}
	if r := p.inner(pkt, off); r != OK {
		return r
	}
	if isReflection(pkt[p.Start:p.End], p) {
		p.Kind = Reflect
	}
	return OK
}

// inner validates the inner IP header at pkt[off:] against p.Type and
// sets Start and End to the inner packet (trailing bytes past it are
// dropped).
func (p *Packet) inner(pkt []byte, off int) Reason {
	inner := pkt[off:]
	if len(inner) == 0 {
		return InnerTruncated
	}
	if header.InnerVersionEtherType(inner[0]) != p.Type {
		return InnerVersion
	}
	var total int
	if p.Type == header.EtherTypeIPv4 {
		if len(inner) < header.IPv4MinLen {
			return InnerTruncated
		}
		in := header.IPv4(inner)
		hl := in.HeaderLen()
		total = in.TotalLen()
		if hl < header.IPv4MinLen || total < hl || total > len(inner) {
			return InnerLength
		}
		if in.TTL() == 0 {
			return InnerTTLZero
		}
	} else {
		if len(inner) < header.IPv6HeaderLen {
			return InnerTruncated
		}
		total = header.IPv6HeaderLen + header.IPv6(inner).PayloadLen()
		if total > len(inner) || total == header.IPv6HeaderLen && header.IPv6(inner).NextHeader() == 0 {
			// Jumbograms (payload length 0 with a hop-by-hop header) are not tunnelled.
			return InnerLength
		}
	}
	p.Start, p.End = off, off+total
	return OK
}

// isReflection reports whether inner is a Cisco keepalive probe from the far
// end: a GRE packet of the outer family addressed from our outer
// destination (this host) back to the outer source (the prober) whose own
// GRE header carries protocol type 0 (inside IPv4 over IPv4, inside IPv6
// over IPv6: ip6gre; over GRE-in-UDP, p.Port set, that GRE inside
// UDP to the prober's port, in either family). Only such a probe is reflected, and what is
// reflected is a keepalive reply, which the prober does not reflect again:
// a packet nesting GRE inside GRE bounces at most once. Anything else
// (inner GRE carrying IP, say) is data for the host, which routes it as it
// would any packet.
func isReflection(inner []byte, p *Packet) bool {
	var src, dst netip.Addr
	var proto uint8
	var off int
	switch {
	case p.Type == header.EtherTypeIPv4 && p.Src.Is4():
		in := header.IPv4(inner)
		src, dst, proto, off = in.SrcAddr(), in.DstAddr(), in.Protocol(), in.HeaderLen()
	case p.Type == header.EtherTypeIPv6 && p.Src.Is6():
		in := header.IPv6(inner)
		src, dst, proto, off = in.SrcAddr(), in.DstAddr(), in.NextHeader(), header.IPv6HeaderLen
	default:
		return false
	}
	if src != p.Dst || dst != p.Src {
		return false
	}
	switch {
	case proto == header.ProtoGRE && p.Port == 0:
	case proto == header.ProtoUDP && p.Port != 0:
		// The probe of a GRE-in-UDP tunnel comes back inside UDP, to
		// the prober's port: what the prober's socket can receive.
		if !header.UDP(inner[off:]).IsValid() {
			return false
		}
		off += header.UDPLen
	default:
		return false
	}
	g := header.GRE(inner[off:])
	if len(g) < header.GREMinLen {
		return false
	}
	flags := g.Flags()
	return g.Version() == 0 && flags&(header.GREFlagRoute|header.GREReserved0Drop) == 0 &&
		len(g) >= header.GRELen(flags) && g.Protocol() == header.EtherTypeKeepalive
}

// PrepareReflection readies a keepalive probe's inner packet (Kind
// Reflect, pkt[Start:End]) to be sent back out of the underlay as a router
// forwarding it would: it refuses a packet whose TTL (hop limit) would
// expire here (ReflectTTL) and an IPv4 one with IP options or fragment
// bits (ReflectHeader), which would otherwise leave this host, with
// IP_HDRINCL, exactly as the sender chose them; a real probe has neither.
// It decrements the TTL and updates an IPv4 header checksum in place.
func PrepareReflection(inner []byte) Reason {
	if len(inner) >= header.IPv6HeaderLen && inner[0]>>4 == 6 {
		ip := header.IPv6(inner)
		if ip.HopLimit() <= 1 {
			return ReflectTTL
		}
		ip.SetHopLimit(ip.HopLimit() - 1)
		return OK
	}
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

// DecapECNFrame is DecapECN for an Ethernet frame (gretap): the IPv4 or
// IPv6 packet it carries gets the outer ECN field combined in, as Linux's
// gretap does (INET_ECN_decapsulate by the frame's protocol); a frame of
// any other kind (ARP, VLAN-tagged) is not ECN-capable.
func DecapECNFrame(frame []byte, outerTOS uint8) bool {
	if len(frame) >= header.EthernetHeaderLen {
		switch header.Ethernet(frame).EtherType() {
		case header.EtherTypeIPv4, header.EtherTypeIPv6:
			return DecapECN(frame[header.EthernetHeaderLen:], outerTOS)
		}
	}
	return DecapECN(nil, outerTOS)
}
