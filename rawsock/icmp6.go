package rawsock

import "github.com/gretun/gretun/header"

// minMTU6 is IPv6's minimum link MTU (RFC 8200 section 5): a Packet Too Big
// reporting less is ignored, as Linux ignores it since atomic fragments
// were deprecated (RFC 8021).
const minMTU6 = header.IPv6MinMTU

// ParseTooBig6 parses an ICMPv6 message (without the IPv6 header that
// carried it) and reports whether it is a Packet Too Big (RFC 4443 section
// 3.2) with an MTU of at least 1280, quoting an IPv6 packet whose tunnel
// protocol — after a destination options header, where the encapsulation
// limit travels — is 4, 41 or 47, with for GRE the header up to its key,
// as ParseTooBig does for IPv4. Its checksum is the kernel's to verify: a
// raw ICMPv6 socket receives only messages whose checksum is right. It
// never panics and Quote aliases icmp.
func ParseTooBig6(icmp []byte) (TooBig, bool) {
	m := header.ICMPv6(icmp)
	if len(m) < header.ICMPv6Quote+header.IPv6HeaderLen || m.Type() != header.ICMPv6PacketTooBig || m.Code() != 0 {
		return TooBig{}, false
	}
	q := header.IPv6(m.Quote())
	if !q.IsValid() || m.MTU() < minMTU6 || m.MTU() > 1<<20 {
		return TooBig{}, false
	}
	tb := TooBig{Src: q.SrcAddr(), Dst: q.DstAddr(), MTU: int(m.MTU()), Quote: q}
	next, off := q.NextHeader(), header.IPv6HeaderLen
	if next == header.IPv6DestOpts {
		if len(q) < off+header.IPv6ExtMinLen {
			return TooBig{}, false
		}
		ext := header.IPv6Ext(q[off:])
		next, off = ext.NextHeader(), off+ext.Len(header.IPv6DestOpts)
	}
	tb.Proto = int(next)
	switch tb.Proto {
	case ProtoIPIP, ProtoIPv6:
		return tb, true
	case ProtoGRE:
		if off > len(q) || !tb.quoteGRE(header.GRE(q[off:])) {
			return TooBig{}, false
		}
		return tb, true
	}
	return TooBig{}, false
}

// ICMP6Conn reads Packet Too Big messages about our outer IPv6 packets from
// a raw ICMPv6 socket, as ICMPConn does for IPv4.
type ICMP6Conn struct {
	sys icmp6Sys // platform part
}

// OpenICMP6 opens a raw ICMPv6 socket in the calling thread's network
// namespace that the kernel filters down to Packet Too Big (ICMP6_FILTER).
// It needs CAP_NET_RAW.
func OpenICMP6() (*ICMP6Conn, error) {
	c := &ICMP6Conn{}
	if err := c.sys.open(); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadTooBig blocks until a Packet Too Big quoting one of our tunnel
// packets arrives, read into buf, and returns it; Quote aliases buf. After
// Close it returns an error for which errors.Is(err, net.ErrClosed).
func (c *ICMP6Conn) ReadTooBig(buf []byte) (TooBig, error) { return c.sys.readTooBig(buf) }

// Close closes the socket; a blocked ReadTooBig returns net.ErrClosed.
func (c *ICMP6Conn) Close() error { return c.sys.close() }
