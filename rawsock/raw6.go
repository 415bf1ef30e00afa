package rawsock

import (
	"errors"
	"sync/atomic"
)

// Conn6 is a raw IPv6 socket for one tunnel protocol (next header 4, 41 or
// 47), with the same batch interface and error contract as Conn (see
// errors.go; ErrNotIPv6 stands for ErrNotIPv4).
//
// Why IPV6_HDRINCL on send, and a header put back on receive: an IPv6 raw
// socket hands the payload without the IPv6 header or its extension
// headers, and builds that header itself on send from socket options and
// per-message ancillary data. Every field a tunnel sets per packet — the
// hop limit and traffic class it may inherit, the flow label (which the
// kernel takes only once registered with IPV6_FLOWLABEL_MGR), the
// encapsulation limit option, which differs per tunnel on a socket they all
// share — would need a control message per packet. With IPV6_HDRINCL
// (Linux 4.5) encap builds the whole packet, as it does over IPv4, and
// sendmmsg sends it routed by its destination. On receive the kernel has
// already checked the extension headers: it drops a packet with an option
// whose action bits say discard, reassembles fragments and skips the
// destination options header carrying an encapsulation limit, which binds
// only a later tunnel entry point (RFC 2473 section 4.1.1). ReadBatch asks
// for the destination address (IPV6_PKTINFO) and traffic class
// (IPV6_TCLASS) in each message's ancillary data, the source comes as the
// message's name, and it writes the fixed header those give in front of the
// payload: decap.Parse6 reads received and built packets alike, and the
// payload is never copied.
type Conn6 struct {
	proto int
	sys   conn6Sys // platform part, see raw6_linux.go

	truncated atomic.Uint64
}

// ErrNotIPv6 is returned by Conn6.WriteBatch for a packet too short to
// hold an IPv6 header or whose version field is not 6.
var ErrNotIPv6 = errors.New("rawsock: packet does not start with an IPv6 header")

// ErrBadProto6 is returned by Open6 for a protocol other than 4, 41 or 47.
var ErrBadProto6 = errors.New("rawsock: protocol must be 4 (IPv4 in IPv6), 41 (IPv6 in IPv6) or 47 (GRE)")

// Open6 opens a raw AF_INET6 socket for proto (ProtoIPIP, ProtoIPv6 or
// ProtoGRE) in the calling thread's network namespace, with IPV6_HDRINCL,
// IPV6_RECVPKTINFO and IPV6_RECVTCLASS on and 4 MiB buffers as Open. It
// needs CAP_NET_RAW. While it is open the kernel no longer answers packets
// of proto with an ICMPv6 parameter problem.
func Open6(proto int) (*Conn6, error) {
	if proto != ProtoIPIP && proto != ProtoIPv6 && proto != ProtoGRE {
		return nil, ErrBadProto6
	}
	c := &Conn6{proto: proto}
	if err := c.sys.open(proto); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadBatch blocks until at least one packet arrives, then fills
// bufs[i][:sizes[i]] for i < n with an IPv6 packet: the fixed header
// rebuilt from the message (version, traffic class, payload length, the
// protocol as next header, source and destination; flow label and hop
// limit 0, which the kernel does not report) followed by the payload as
// received, which the kernel wrote straight to bufs[i][40:]. A slot whose
// packet did not fit gets size 0 (see Stats). After Close it returns an
// error for which errors.Is(err, net.ErrClosed). It does not allocate.
func (c *Conn6) ReadBatch(bufs [][]byte, sizes []int) (n int, err error) {
	return c.sys.readBatch(c, bufs, sizes)
}

// WriteBatch sends each pkts[i], a whole IPv6 packet with its header, to the
// destination in that header, as Conn.WriteBatch does (the kernel never
// fragments it: one larger than the egress device's MTU fails with
// EMSGSIZE). It does not allocate.
func (c *Conn6) WriteBatch(pkts [][]byte) (n int, err error) {
	return c.sys.writeBatch(pkts, 0, 0)
}

// WriteBatchOut is WriteBatch out of the device with index ifindex
// (IPV6_PKTINFO, and sin6_scope_id, which a link-local destination
// needs) and with firewall mark mark, as Conn.WriteBatchOut.
func (c *Conn6) WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (n int, err error) {
	return c.sys.writeBatch(pkts, ifindex, mark)
}

// Close closes the socket; a blocked ReadBatch returns net.ErrClosed.
func (c *Conn6) Close() error { return c.sys.close() }

// Proto returns the protocol the Conn6 was opened for.
func (c *Conn6) Proto() int { return c.proto }

// Stats returns a snapshot of the Conn6's counters.
func (c *Conn6) Stats() Stats { return Stats{Truncated: c.truncated.Load()} }
