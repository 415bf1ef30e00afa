// Package pmtu is the packet logic that keeps a tunnel's smaller MTU
// from becoming a black hole: the ICMP errors that tell inner senders to
// send smaller packets, a limit on how many of them a tunnel sends, the
// tunnel's path MTU soft state, and TCP MSS clamping. It does no I/O and
// keeps no clock: the engine reads and writes the packets and passes the
// time in.
//
// An encapsulating router is the first hop of the inner path, so it has
// to answer an inner packet that does not fit the tunnel the way any
// router would (RFC 2003 §5.1.2, RFC 4459 §3.2):
//
//   - TooBig builds the answer to a packet read from the tunnel device:
//     an ICMP Fragmentation Needed with the Next-Hop MTU (RFC 792, RFC
//     1191) for IPv4 with DF set, an ICMPv6 Packet Too Big (RFC 4443
//     §3.2) for IPv6. It refuses, with an error naming the reason, in
//     every case where RFC 1122 §3.2.2 and RFC 4443 §2.4(e) forbid an
//     error: about an ICMP error, a non-first fragment, or a packet from
//     an address that names no single host.
//   - Limiter bounds how many such errors a tunnel sends.
//   - State is the tunnel's path MTU (RFC 2003 §5.1.2, RFC 4459): the
//     device MTU, lowered when the underlay reports that our outer
//     packets are too big, and raised back after Expires so that a wider
//     path is found again (RFC 1191 §6.3).
//   - ClampMSS and MSSFor rewrite the MSS option (RFC 879, RFC 6691) of
//     TCP SYNs crossing the tunnel, with an incremental checksum update
//     (RFC 1624), so that TCP never sends segments too big for it.
//
// Header layouts follow RFC 791 (IPv4) and RFC 8200 (IPv6); checksums
// are the Internet checksum of RFC 1071.
//
// The engine's use, per inner packet buf[off:end] longer than
// State.Effective, with hdr = HeaderLen4 or HeaderLen6 for its family
// and addr an address of ours of that family:
//
//	n, err := pmtu.TooBig(buf[off-hdr:], buf[off:end], st.Effective(now), addr)
//	switch {
//	case err == nil && lim.Allow(now):
//		write buf[off-hdr : off-hdr+n] to the device; count it
//	case err == nil:
//		drop the packet; count it as rate limited
//	case errors.Is(err, pmtu.ErrMayFragment), errors.Is(err, pmtu.ErrFits):
//		encapsulate it; the outer packet is fragmented
//	default:
//		drop the packet; count err
//	}
//
// What it does not do: fragment or reassemble (the kernel does that for
// the outer packets), read routes or link MTUs (netconf does), or look
// at the contents of ICMP errors from the underlay beyond ReportedMTU.
// Nothing here allocates.
package pmtu
