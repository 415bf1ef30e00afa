package rawsock

import (
	"net/netip"

	"github.com/gretun/gretun/header"
)

// Why a separate raw ICMP socket rather than IP_RECVERR on the data socket:
//
//   - The error queue of a socket is charged to its receive buffer, so
//     unread Fragmentation Needed reports would eat the room the data path
//     needs; and with IP_RECVERR set, every ICMP error about our packets
//     also becomes a pending socket error that the next recvmmsg returns
//     instead of data.
//   - MSG_ERRQUEUE reads never block, and Go lets only one goroutine wait
//     for a socket to become readable: a goroutine waiting for errors
//     would hold up ReadBatch. A separate socket gets its own blocking
//     reader.
//
// The kernel delivers every ICMP message addressed to this namespace to raw
// ICMP sockets (before its own ICMP handling); an ICMP_FILTER keeps all but
// Destination Unreachable out in the kernel, and ParseTooBig keeps only
// Fragmentation Needed quoting a protocol 4, 41 or 47 packet.
//
// Independently of this socket, the kernel itself records a route
// exception (`ip route get` shows "cache ... mtu N") for the outer
// destination when such a message arrives while a raw socket for the
// quoted protocol is open. netconf.RouteMTU deliberately leaves it out:
// the engine keeps what it learns here per tunnel, as soft state that
// expires, and never lets it become a device MTU.

// TooBig is an ICMP Fragmentation Needed message about an outer packet
// this host sent.
type TooBig struct {
	From  netip.Addr // the router that sent the ICMP message
	Src   netip.Addr // source of the quoted packet (our local address)
	Dst   netip.Addr // destination of the quoted packet (the tunnel remote)
	Proto int        // protocol of the quoted packet: ProtoIPIP, ProtoIPv6 or ProtoGRE
	// GREFlags, GREType and Key are the quoted GRE header's flags word
	// (version included), protocol type and key (when GREFlags has K), so
	// that the message can be matched to one tunnel among several to the
	// same remote, as the kernel's ipgre_err does. Zero for IP in IP.
	GREFlags uint16
	GREType  uint16
	Key      uint32
	// MTU is the next-hop MTU the router reported, at least 68 (RFC 791's
	// minimum): a message reporting less is refused, 0 (routers older than
	// RFC 1191) too. It is not checked against any larger minimum: anyone
	// can forge these messages, so the engine clamps it (Linux does not go
	// below 552, min_pmtu).
	MTU int
	// Quote is the quoted part of our packet from its IPv4 header on: at
	// least the header and 8 bytes (the GRE base header and key when no
	// checksum precedes it); Linux routers quote up to 576 bytes in total.
	// It aliases the buffer the message was read into.
	Quote []byte
}

// minMTU is the smallest MTU of any IPv4 link (RFC 791): a router
// reporting less is mistaken or forged.
const minMTU = 68

// ParseTooBig parses an ICMP message (without the IPv4 header that carried
// it) and reports whether it is a Fragmentation Needed with a valid
// checksum and a next-hop MTU of at least 68, quoting an IPv4 packet of
// protocol 4, 41 or 47. For GRE the quote must hold the GRE header up to and
// including its key: as in the kernel's ipgre_err, a message that cannot
// name the key cannot name the tunnel, and is ignored (routers that quote
// only 8 bytes leave out the key of a tunnel with checksums). From is left
// unset. It never panics and Quote aliases icmp.
func ParseTooBig(icmp []byte) (TooBig, bool) {
	m := header.ICMPv4(icmp)
	if len(m) < header.ICMPv4Quote+header.IPv4MinLen ||
		m.Type() != header.ICMPv4DstUnreachable || m.Code() != header.ICMPv4FragNeeded ||
		!m.ChecksumValid() {
		return TooBig{}, false
	}
	q := header.IPv4(m.Quote())
	if !q.IsValid() {
		return TooBig{}, false
	}
	ihl := q.HeaderLen()
	tb := TooBig{
		Src:   netip.AddrFrom4(q.Src()),
		Dst:   netip.AddrFrom4(q.Dst()),
		Proto: int(q.Protocol()),
		MTU:   int(m.NextHopMTU()),
		Quote: q,
	}
	if tb.MTU < minMTU {
		return TooBig{}, false
	}
	switch tb.Proto {
	case ProtoIPIP, ProtoIPv6:
		return tb, true
	case ProtoGRE:
		if !tb.quoteGRE(header.GRE(q[ihl:])) {
			return TooBig{}, false
		}
		return tb, true
	}
	return TooBig{}, false
}

// quoteGRE reads the quoted GRE header g into tb's GRE fields and reports
// whether it is there up to its key (if it has one): a message that cannot
// name the key cannot name the tunnel.
func (tb *TooBig) quoteGRE(g header.GRE) bool {
	if len(g) < header.GREMinLen {
		return false
	}
	tb.GREFlags, tb.GREType = g.Flags(), g.Protocol()
	if tb.GREFlags&header.GREFlagKey != 0 {
		if len(g) < g.KeyOffset()+4 {
			return false
		}
		tb.Key = g.Key()
	}
	return true
}

// ICMPConn reads Fragmentation Needed messages about our outer packets
// from a raw ICMP socket. One goroutine reads it; it is rare traffic
// (routers rate-limit ICMP), so a read may allocate.
type ICMPConn struct {
	sys icmpSys // platform part
}

// OpenICMP opens a raw ICMP socket in the calling thread's network
// namespace that the kernel filters down to Destination Unreachable
// messages. It needs CAP_NET_RAW.
func OpenICMP() (*ICMPConn, error) {
	c := &ICMPConn{}
	if err := c.sys.open(); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadTooBig blocks until a Fragmentation Needed message quoting a
// protocol 4, 41 or 47 packet arrives, read into buf (1500 bytes is plenty),
// and returns it; Quote aliases buf. Other ICMP messages are skipped.
// After Close it returns an error for which errors.Is(err, net.ErrClosed).
func (c *ICMPConn) ReadTooBig(buf []byte) (TooBig, error) {
	return c.sys.readTooBig(buf)
}

// Close closes the socket; a blocked ReadTooBig returns net.ErrClosed.
func (c *ICMPConn) Close() error {
	return c.sys.close()
}
