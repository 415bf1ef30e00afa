// Package rawsock sends and receives whole IPv4 packets of one protocol —
// 4 (IP-in-IP), 41 (IPv6 in IPv4) or 47 (GRE) — through a raw socket, many packets per system
// call (recvmmsg directly, sendmmsg through golang.org/x/net/ipv4).
//
// It is the underlay seam of the data path: encap writes the outer IPv4
// header itself (the socket has IP_HDRINCL on) and WriteBatch routes each
// packet by the destination address in that header; ReadBatch hands back
// received packets header included, exactly as the kernel delivered them
// (fragments already reassembled), for decap to validate.
//
// With IP_HDRINCL the kernel still fills in, on send, the total length, the
// header checksum, a zero identification and a zero source address
// (raw(7)); it never fragments such a packet: one larger than the egress
// device's MTU fails with EMSGSIZE whatever its DF bit says (see errors.go).
//
// The package also reads ICMP Fragmentation Needed messages about packets
// this host sent (OpenICMP, TooBig), the input of path MTU discovery for
// tunnels (RFC 2003 §5.1.2, RFC 4459).
//
// Conn6 does the same over IPv6 for next headers 4, 41 and 47 (raw6.go
// says why it sends with IPV6_HDRINCL and rebuilds the fixed header of
// what it receives).
//
// It does not demultiplex, validate or build packets.
package rawsock

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/gretun/gretun/header"
)

// The IP protocol numbers Open accepts.
const (
	ProtoIPIP = header.ProtoIPIP // IP-in-IP, RFC 2003
	ProtoIPv6 = header.ProtoIPv6 // IPv6 in IP: RFC 4213's 6in4 over IPv4, RFC 2473 over IPv6
	ProtoGRE  = header.ProtoGRE  // GRE, RFC 2784 / RFC 2890
)

// BatchSize is the number of message slots a Conn preallocates for each
// direction; larger batches work too (the slots grow once).
const BatchSize = 128

// ErrNotImplemented is returned on platforms without raw-socket support.
var ErrNotImplemented = fmt.Errorf("rawsock: not implemented on %s", runtime.GOOS)

// ErrBadProto is returned by Open for a protocol other than 4, 41 or 47.
var ErrBadProto = errors.New("rawsock: protocol must be 4 (IPIP), 41 (IPv6 in IPv4) or 47 (GRE)")

// Conn is a raw IPv4 socket for one protocol. ReadBatch and WriteBatch may
// run concurrently with each other (one receive and one send loop);
// concurrent calls in the same direction are serialised.
type Conn struct {
	proto int
	sys   connSys // platform part, see rawsock_linux.go

	truncated atomic.Uint64
}

// Stats are a Conn's own counters (the engine counts everything else).
type Stats struct {
	// Truncated counts received packets larger than the buffer offered for
	// them; their slots came back with size 0.
	Truncated uint64
}

// Open opens a raw AF_INET socket for proto (ProtoIPIP, ProtoIPv6 or ProtoGRE) in the
// calling thread's network namespace, with IP_HDRINCL on and 4 MiB receive
// and send buffers (SO_RCVBUFFORCE/SO_SNDBUFFORCE when CAP_NET_ADMIN allows,
// else as much of SO_RCVBUF/SO_SNDBUF as net.core.[rw]mem_max grants).
// It needs CAP_NET_RAW. While the socket is open the kernel stops answering
// packets of proto with ICMP protocol-unreachable.
func Open(proto int) (*Conn, error) {
	if proto != ProtoIPIP && proto != ProtoIPv6 && proto != ProtoGRE {
		return nil, ErrBadProto
	}
	c := &Conn{proto: proto}
	if err := c.sys.open(proto); err != nil {
		return nil, err
	}
	return c, nil
}

// Proto returns the IP protocol number the Conn was opened for.
func (c *Conn) Proto() int { return c.proto }

// ReadBatch blocks until at least one packet arrives, then fills
// bufs[i][:sizes[i]] with whole IPv4 packets (header included) for i < n,
// as many as one recvmmsg delivers, at most min(len(bufs), len(sizes)).
// A slot whose packet did not fit its buffer gets size 0 (see Stats).
// After Close it returns an error for which errors.Is(err, net.ErrClosed).
// With no slots it returns 0, nil at once.
//
// It does not allocate: recvmmsg is called directly, asking for no source
// addresses (x/net's ReadBatch would allocate one per packet), into
// message slots made once.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int) (n int, err error) {
	return c.sys.readBatch(c, bufs, sizes)
}

// WriteBatch sends each pkts[i], a whole IPv4 packet with its header, to
// the destination address in that header, with as few sendmmsg calls as the
// kernel allows. It returns how many were sent: on an error for packet n it
// returns (n, err) and sends nothing after it; see errors.go for what each
// error means and whether to continue with pkts[n+1:]. It does not
// allocate: the destination addresses live in preallocated slots.
func (c *Conn) WriteBatch(pkts [][]byte) (n int, err error) {
	return c.sys.writeBatch(pkts, 0, 0)
}

// WriteBatchOut is WriteBatch out of the device with index ifindex
// (IP_PKTINFO; 0 for the routes' choice) and with firewall mark mark
// (SO_MARK; 0 for none): each packet is routed as if the routes that
// leave by that device were the only ones, as the kernel routes a tunnel
// bound to its link (`dev NAME`), and by the rules its mark matches
// (`fwmark N`).
func (c *Conn) WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (n int, err error) {
	return c.sys.writeBatch(pkts, ifindex, mark)
}

// Close closes the socket; a blocked ReadBatch returns net.ErrClosed.
func (c *Conn) Close() error {
	return c.sys.close()
}

// Stats returns a snapshot of the Conn's counters.
func (c *Conn) Stats() Stats {
	return Stats{Truncated: c.truncated.Load()}
}
