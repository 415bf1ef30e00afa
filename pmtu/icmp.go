package pmtu

import (
	"errors"
	"github.com/gretun/gretun/header"
	"math"
	"net/netip"
)

// Lengths of the headers TooBig puts in front of the quoted packet. An
// engine that leaves this much room before the inner packet in its
// buffer can build the error in place: the quote then already sits
// where it belongs and is not copied.
const (
	// HeaderLen4 is an IPv4 header without options plus the ICMP header.
	HeaderLen4 = header.IPv4MinLen + header.ICMPv4MinLen
	// HeaderLen6 is an IPv6 header without extensions plus the ICMPv6 header.
	HeaderLen6 = header.IPv6HeaderLen + header.ICMPv6MinLen

	// MaxLen4 is the longest error TooBig builds for IPv4: the quote is
	// the offending header (at most 60 bytes) plus 8 bytes of its payload.
	MaxLen4 = HeaderLen4 + header.IPv4MaxLen + 8
	// MaxLen6 is the longest error TooBig builds for IPv6 (RFC 4443 §2.4(c):
	// as much of the offending packet as fits in the minimum IPv6 MTU).
	MaxLen6 = MinMTU6
)

// Family minimum MTUs.
const (
	// MinMTU4 is the MTU every IPv4 module must accept (RFC 791 §3.2).
	MinMTU4 = 68
	// MinMTU6 is the minimum link MTU of IPv6 (RFC 8200 §5). A Packet Too
	// Big never reports less (RFC 8201 §4).
	MinMTU6 = 1280
)

// Values we put in the headers of the errors we originate.
const (
	// errTOS is precedence 6, internetwork control, which RFC 1812
	// §4.3.2.5 asks for on ICMP errors and which Linux uses.
	errTOS = 0xc0
	// errTTL is Linux's default net.ipv4.ip_default_ttl and
	// net.ipv6.conf.*.hop_limit.
	errTTL = 64
)

// The conditions under which TooBig builds nothing. Each one tells the
// caller what to do with the inner packet.
var (
	// ErrMalformed: inner is not a complete IPv4 or IPv6 packet (bad
	// version, header or length fields, or a truncated extension header
	// chain). Drop it.
	ErrMalformed = errors.New("pmtu: inner packet is not a well-formed IPv4 or IPv6 packet")
	// ErrFits: inner is not longer than mtu raised to its family's
	// minimum MTU. Send it; if it is still longer than the tunnel's path
	// MTU (an IPv6 packet of at most 1280 bytes over a narrower tunnel)
	// the outer packet must be fragmented (RFC 2473 §7.1, RFC 4459 §3.2).
	ErrFits = errors.New("pmtu: packet fits the MTU")
	// ErrMayFragment: an IPv4 packet without DF. Send it and let the
	// outer packet be fragmented.
	ErrMayFragment = errors.New("pmtu: IPv4 packet without DF may be fragmented")
	// ErrFragment: a fragment other than the first (RFC 1122 §3.2.2).
	// Drop it; the first fragment, as large as the others, tells the
	// sender.
	ErrFragment = errors.New("pmtu: no ICMP error about a non-first fragment")
	// ErrICMPError: the packet is itself an ICMP error (RFC 1122 §3.2.2,
	// RFC 4443 §2.4(e)). Drop it.
	ErrICMPError = errors.New("pmtu: no ICMP error about an ICMP error")
	// ErrAddress: the sender's address names no single host (unspecified,
	// loopback, multicast, broadcast, reserved), or an IPv4 packet went
	// to a multicast or broadcast address (RFC 1122 §3.2.2, RFC 4443
	// §2.4(e)). Drop it.
	ErrAddress = errors.New("pmtu: no ICMP error to or about this address")
	// ErrSource: src is not a usable address of the inner packet's family.
	ErrSource = errors.New("pmtu: no source address of the packet's family for the ICMP error")
	// ErrShortBuffer: dst cannot hold the error; MaxLen4 and MaxLen6
	// bytes always suffice.
	ErrShortBuffer = errors.New("pmtu: buffer too small for the ICMP error")
)

// TooBig builds the ICMP error that tells the sender of inner, a packet
// read from the tunnel device, that it does not fit a tunnel whose path
// MTU is mtu. It writes the error into dst and returns its length; the
// caller writes dst[:n] back to the tunnel device.
//
// For IPv4 the error is Destination Unreachable, Fragmentation Needed
// and DF Set (type 3, code 4) carrying mtu as the Next-Hop MTU (RFC
// 1191 §4), quoting the offending IP header and the first 8 bytes of
// its payload (RFC 792). For IPv6 it is Packet Too Big (type 2, code 0,
// RFC 4443 §3.2) carrying mtu but never less than 1280, quoting as much
// of the packet as keeps the error within 1280 bytes. The MTU field is
// clamped to [68, 65535] for IPv4 and [1280, 2^32-1] for IPv6.
//
// src is the IP source of the error, of the inner packet's family. The
// engine passes the inner packet's destination (for an IPv6 packet to a
// group, the device's own address): the error goes back into the TUN
// device of the very host that may own the device's addresses, and Linux
// drops IPv4 arriving with one of its own addresses as source (a martian,
// unless accept_local); a device may have only link-local IPv6 addresses,
// which never reach a sender behind the router; the destination is routed
// through the tunnel and passes even strict reverse-path filtering.
// An IPv4-mapped IPv6 src is accepted for IPv4. The destination is the
// inner packet's source.
//
// dst and inner may overlap, so the error can be built in the buffer
// the packet was read into: with inner at buf[off:], passing
// dst = buf[off-HeaderLen4:] (or HeaderLen6) leaves the quote where it
// already is. The offending packet is not needed afterwards.
//
// TooBig returns one of the errors above, and writes nothing, when no
// ICMP error may be sent: the error says what to do with the packet.
// It never allocates and never panics. Rate limiting is the caller's:
// call Limiter.Allow after TooBig succeeds.
func TooBig(dst, inner []byte, mtu int, src netip.Addr) (int, error) {
	if len(inner) == 0 {
		return 0, ErrMalformed
	}
	switch header.IPVersion(inner) {
	case 4:
		return tooBig4(dst, inner, mtu, src)
	case 6:
		return tooBig6(dst, inner, mtu, src)
	}
	return 0, ErrMalformed
}

// Check tells, without building anything, whether TooBig would answer
// inner at mtu given a usable source: nil if so, else the error TooBig
// would return. An engine checks first so that it rate-limits, and looks
// for a source address, only for packets that do get an error.
func Check(inner []byte, mtu int) error {
	if len(inner) == 0 {
		return ErrMalformed
	}
	var err error
	switch header.IPVersion(inner) {
	case 4:
		_, _, _, _, err = check4(inner, mtu)
	case 6:
		_, _, _, err = check6(inner, mtu)
	default:
		err = ErrMalformed
	}
	return err
}

// check4 makes TooBig's decisions about an IPv4 packet that need no
// source address. It returns the packet (trimmed to its total length), its
// header length, mtu clamped to the field's range, and the error's
// destination.
func check4(inner []byte, mtu int) (pkt header.IPv4, ihl, clamped int, to netip.Addr, err error) {
	pkt, ihl, ok := ipv4(inner)
	if !ok {
		return nil, 0, 0, to, ErrMalformed
	}
	mtu = min(max(mtu, MinMTU4), 0xffff)
	if len(pkt) <= mtu {
		return nil, 0, 0, to, ErrFits
	}
	if !pkt.DF() {
		return nil, 0, 0, to, ErrMayFragment
	}
	if pkt.FlagsFrag()&header.IPv4FragOffset != 0 {
		return nil, 0, 0, to, ErrFragment
	}
	to = netip.AddrFrom4(pkt.Src())
	if !unicast4(to) || multicast4(pkt.Dst()) {
		return nil, 0, 0, to, ErrAddress
	}
	if pkt.Protocol() == header.ProtoICMP {
		if len(pkt) == ihl {
			return nil, 0, 0, to, ErrMalformed
		}
		if icmpError4(header.ICMPv4(pkt[ihl:]).Type()) {
			return nil, 0, 0, to, ErrICMPError
		}
	}
	return pkt, ihl, mtu, to, nil
}

func tooBig4(dst, inner []byte, mtu int, src netip.Addr) (int, error) {
	pkt, ihl, mtu, to, err := check4(inner, mtu)
	if err != nil {
		return 0, err
	}
	src = src.Unmap()
	if !src.Is4() || !unicast4(src) {
		return 0, ErrSource
	}
	quote := min(len(pkt), ihl+8)
	n := HeaderLen4 + quote
	if len(dst) < n {
		return 0, ErrShortBuffer
	}

	// The quote first: dst may overlap inner, whose fields are no longer
	// needed once to and quote are known.
	copy(dst[HeaderLen4:n], pkt[:quote])

	header.IPv4(dst).Encode(&header.IPv4Fields{
		TOS:      errTOS,
		TotalLen: uint16(n),
		// An atomic datagram (RFC 6864 §4): DF set, so the
		// Identification carries no meaning and zero will do.
		ID:        0,
		FlagsFrag: header.IPv4FlagDF,
		TTL:       errTTL,
		Protocol:  header.ProtoICMP,
		Src:       src,
		Dst:       to,
	})
	header.ICMPv4(dst[header.IPv4MinLen:n]).EncodeFragNeeded(uint16(mtu))
	return n, nil
}

// check6 is check4 for IPv6.
func check6(inner []byte, mtu int) (pkt header.IPv6, clamped int, to netip.Addr, err error) {
	pkt, ok := ipv6(inner)
	if !ok {
		return nil, 0, to, ErrMalformed
	}
	mtu = max(mtu, MinMTU6)
	if len(pkt) <= mtu {
		return nil, 0, to, ErrFits
	}
	proto, off, first, ok := upper(pkt)
	if !ok {
		return nil, 0, to, ErrMalformed
	}
	if !first {
		return nil, 0, to, ErrFragment
	}
	// RFC 4443 §2.4(e.3) lets a Packet Too Big answer a packet sent to a
	// multicast address, so only the source is checked.
	to = netip.AddrFrom16(pkt.Src())
	if !unicast6(to) {
		return nil, 0, to, ErrAddress
	}
	if proto == header.ProtoICMPv6 {
		if off >= len(pkt) {
			return nil, 0, to, ErrMalformed
		}
		// RFC 4443 §2.1: types below 128 are errors.
		if header.ICMPv6(pkt[off:]).IsError() {
			return nil, 0, to, ErrICMPError
		}
	}
	return pkt, mtu, to, nil
}

func tooBig6(dst, inner []byte, mtu int, src netip.Addr) (int, error) {
	pkt, mtu, to, err := check6(inner, mtu)
	if err != nil {
		return 0, err
	}
	return error6(dst, pkt, src, to, header.ICMPv6PacketTooBig, 0, uint32(min(uint64(mtu), math.MaxUint32)))
}

// error6 writes into dst an ICMPv6 error of type typ and code from src to
// to, with value as its second word, quoting as much of pkt as fits in
// 1280 bytes (dst may hold pkt at dst[HeaderLen6:]), and returns its length.
func error6(dst, pkt []byte, src, to netip.Addr, typ, code uint8, value uint32) (int, error) {
	if !src.Is6() || src.Is4In6() || !unicast6(src) {
		return 0, ErrSource
	}
	quote := min(len(pkt), MaxLen6-HeaderLen6)
	n := HeaderLen6 + quote
	if len(dst) < n {
		return 0, ErrShortBuffer
	}
	copy(dst[HeaderLen6:n], pkt[:quote])
	ip := header.IPv6(dst)
	ip.Encode(&header.IPv6Fields{ // traffic class and flow label 0
		PayloadLen: uint16(n - header.IPv6HeaderLen),
		NextHeader: header.ProtoICMPv6,
		HopLimit:   errTTL,
		Src:        src,
		Dst:        to,
	})
	header.ICMPv6(dst[header.IPv6HeaderLen:n]).EncodeError(typ, code, value, ip.Addrs())
	return n, nil
}

// ParamProblem6 writes into dst an ICMPv6 Parameter Problem (erroneous
// header field, RFC 4443 section 3.4) from src to the sender of the IPv6
// packet inner, pointing at offset pointer, quoting as much of inner as
// fits in 1280 bytes, and returns its length (at most MaxLen6). It is how
// a tunnel entry point refuses a packet whose encapsulation limit is 0
// (RFC 2473 section 6.6). It refuses, as TooBig does, to answer a
// malformed packet, a fragment other than the first, an ICMPv6 error, or a
// source that is not a single host; dst may overlap inner at
// dst[HeaderLen6:], the quote then staying where it is.
func ParamProblem6(dst, inner []byte, pointer int, src netip.Addr) (int, error) {
	pkt, ok := ipv6(inner)
	if !ok {
		return 0, ErrMalformed
	}
	proto, off, first, ok := upper(pkt)
	switch {
	case !ok:
		return 0, ErrMalformed
	case !first:
		return 0, ErrFragment
	case proto == header.ProtoICMPv6 && off < len(pkt) && header.ICMPv6(pkt[off:]).IsError():
		return 0, ErrICMPError
	}
	to := netip.AddrFrom16(pkt.Src())
	if !unicast6(to) {
		return 0, ErrAddress
	}
	return error6(dst, pkt, src, to, header.ICMPv6ParamProblem, header.ICMPv6ErroneousField, uint32(pointer))
}

// icmpError4 reports whether an ICMPv4 message of type t must not be
// answered with an error. Besides the error types of RFC 792 and RFC
// 1122 §3.2.2 (3, 4, 5, 11, 12) Linux treats every type above 18
// (NR_ICMP_TYPES) as an error; so do we.
func icmpError4(t byte) bool {
	switch t {
	case 3, 4, 5, 11, 12:
		return true
	}
	return t > 18
}

// unicast4 reports whether a names a single IPv4 host: not 0.0.0.0/8,
// 127.0.0.0/8, 224.0.0.0/4, or 240.0.0.0/4 with 255.255.255.255 (RFC
// 1122 §3.2.1.3, RFC 1812 §4.2.2.11).
func unicast4(a netip.Addr) bool {
	b := a.As4()
	return b[0] != 0 && b[0] != 127 && b[0] < 224
}

// multicast4 reports whether the IPv4 address b is multicast or the
// limited broadcast address. A directed broadcast cannot be told from a
// unicast address without the routing table; the sender's kernel
// rejects that case itself.
func multicast4(b [4]byte) bool {
	return b[0]&0xf0 == 0xe0 || (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
}

// unicast6 reports whether a names a single IPv6 node: not unspecified,
// loopback or multicast (RFC 4443 §2.4(e.6)).
func unicast6(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}
