// Package udpsock sends and receives GRE and IPIP inside UDP (encap fou,
// RFC 8086) through an ordinary UDP socket, many datagrams per system
// call, with the kernel's UDP segmentation offload (UDP_SEGMENT) on send
// and UDP_GRO on receive, the way wireguard-go's conn.StdNetBind does. It
// needs no capability: not CAP_NET_RAW as raw sockets do (a port below
// 1024 needs CAP_NET_BIND_SERVICE).
//
// It keeps the shape of rawsock, so the engine and decap see the same
// packets over both: WriteBatch takes whole outer packets (an IPv4 header
// without options, a UDP header, the payload) as encap builds them and
// sends each payload to the header's destination address and port, with
// the header's TTL and TOS as per-message options (IP_TTL, IP_TOS), its DF
// bit as the socket's path MTU discovery mode (IP_MTU_DISCOVER) and a
// UDP checksum unless the header's is 0 (SO_NO_CHECK). The kernel writes
// the IPv4 and UDP headers, from this socket's own address and port: the
// header's source address and port are not used. ReadBatch hands back each
// received datagram behind an IPv4 and UDP header rebuilt from what the
// kernel reported (source address and port, TOS, TTL; destination the
// socket's own address), for decap.ParseUDP.
//
// Consecutive packets to one destination with the same options and
// payload length (the last may be shorter), as the segments of one TSO
// super-packet are, leave in one sendmsg with UDP_SEGMENT, pointing at the
// payloads where they lie (one iovec each: no copy). A datagram that UDP
// GRO coalesced is split into its segments on receipt, each copied into
// its own buffer.
//
// A socket bound to an IPv6 address speaks IPv6 the same way: packets
// with an IPv6 header (and at most a destination options header, which
// the socket sends as IPV6_DSTOPTS: the RFC 2473 encapsulation limit of
// Linux's IPv6 tunnels) and a UDP header, the hop limit and traffic class
// as IPV6_HOPLIMIT and IPV6_TCLASS, path MTU discovery always on (IPv6
// routers never fragment), a zero UDP checksum as UDP_NO_CHECK6_TX; on
// receipt an IPv6 and UDP header (HeaderLen6) rebuilt likewise.
//
// It does not demultiplex, validate or build packets.
package udpsock

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
)

// HeaderLen is the IPv4 and UDP header in front of every packet WriteBatch
// takes and ReadBatch returns.
const HeaderLen = 20 + 8

// HeaderLen6 is the IPv6 and UDP header in front of every packet
// ReadBatch returns on an IPv6 socket.
const HeaderLen6 = 40 + 8

// BatchSize is the number of packets a Conn prepares message slots for;
// larger batches work too (the slots grow once).
const BatchSize = 128

// MaxSegments is the most datagrams the kernel cuts one UDP_SEGMENT send
// into, and the most UDP GRO coalesces (UDP_MAX_SEGMENTS).
const MaxSegments = 64

// ErrNotImplemented is returned on platforms without UDP offload support.
var ErrNotImplemented = fmt.Errorf("udpsock: not implemented on %s", runtime.GOOS)

// ErrNotUDP is returned by WriteBatch for a packet that does not start
// with an IP header of the socket's family (IPv4 of 20 bytes; IPv6 with at
// most destination options) and a UDP header.
var ErrNotUDP = errors.New("udpsock: packet is not IP (IPv4 without options, IPv6 with at most destination options) and UDP of the socket's family")

// Conn is a UDP socket bound to one IPv4 address and port. ReadBatch and
// WriteBatch may run concurrently with each other; concurrent calls in the
// same direction are serialised.
type Conn struct {
	local netip.AddrPort
	sys   connSys // platform part, see udpsock_linux.go

	truncated atomic.Uint64
	coalesced atomic.Uint64
}

// Options choose the offloads Open asks for.
type Options struct {
	// NoGSO sends one datagram per message even where the kernel offers
	// UDP_SEGMENT; NoGRO leaves UDP_GRO off.
	NoGSO, NoGRO bool
}

// Steps are ORed into the Options of every Open, to measure what each
// offload buys (`gretun bench`'s step rows, GRETUN_BENCH_OFF). Not a user
// setting.
var Steps Options

// Open binds a UDP socket to local (an IPv4 or IPv6 address of this host
// and a port; port 0 picks a free one), with a 16 MiB receive and a 4 MiB
// send buffer where allowed, UDP GRO and reporting of the TOS and TTL of
// received datagrams. A port in
// use fails with an error for which errors.Is(err, syscall.EADDRINUSE).
func Open(local netip.AddrPort, o Options) (*Conn, error) {
	if !local.Addr().IsValid() || local.Addr().Is4In6() {
		return nil, fmt.Errorf("udpsock: %s is not an IPv4 or IPv6 address", local.Addr())
	}
	o.NoGSO, o.NoGRO = o.NoGSO || Steps.NoGSO, o.NoGRO || Steps.NoGRO
	c := &Conn{}
	if err := c.sys.open(local, o); err != nil {
		return nil, err
	}
	c.local = c.sys.localAddr()
	return c, nil
}

// LocalAddr is the address and port the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// GSO reports whether WriteBatch sends runs of equal-size payloads as one
// UDP_SEGMENT message; GRO whether the kernel coalesces received datagrams.
func (c *Conn) GSO() bool { return c.sys.gso.Load() }
func (c *Conn) GRO() bool { return c.sys.gro }

// ReadBatch blocks until at least one datagram arrives, then fills
// bufs[i][:sizes[i]] for i < n with a rebuilt IPv4 and UDP header
// (HeaderLen bytes; IPv6, HeaderLen6 bytes, on an IPv6 socket) and the datagram's payload. A datagram UDP GRO
// coalesced comes back as its segments, one per buffer; with GRO on, one
// call reads at most len(bufs)/MaxSegments datagrams so that their
// segments fit. A datagram larger than its buffer comes back with size 0
// (Stats().Truncated). After Close it returns an error for which
// errors.Is(err, net.ErrClosed). It does not allocate.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int) (n int, err error) {
	return c.sys.readBatch(c, bufs, sizes, nil, nil)
}

// ReadBatchGRO is ReadBatch that may hand a coalesced datagram back whole:
// for each datagram UDP GRO coalesced, whole is asked with the datagram
// (pkt: the header rebuilt for its first segment, then the whole payload)
// and its segment size seg; when it answers true the datagram stays in one
// buffer, sizes[i] covering all of it and segs[i] = seg, else it is split as
// ReadBatch splits it. segs[i] is 0 for every other packet. To keep a
// datagram whole without copying it, the call may swap the buffers of bufs
// among themselves. UDP GRO coalesces only datagrams whose UDP checksum
// was not zero, which the kernel verified (or which a sender on this host
// left to offload). whole runs in the calling goroutine.
func (c *Conn) ReadBatchGRO(bufs [][]byte, sizes, segs []int, whole func(pkt []byte, seg int) bool) (n int, err error) {
	return c.sys.readBatch(c, bufs, sizes, segs, whole)
}

// WriteBatch sends each pkts[i] (see the package documentation) and
// returns how many were sent: on an error for packet n it returns (n, err)
// and sends nothing after it, as rawsock does; a message that failed
// fails at its first packet. It does not allocate.
func (c *Conn) WriteBatch(pkts [][]byte) (n int, err error) {
	return c.sys.writeBatch(pkts, 0, 0)
}

// WriteBatchOut is WriteBatch out of the device with index ifindex
// (IP_PKTINFO, IPV6_PKTINFO; 0 for the routes' choice) and with firewall
// mark mark (SO_MARK; 0 for none): each datagram is routed as if the
// routes that leave by that device were the only ones, as the kernel
// routes a tunnel bound to its link (`dev NAME`), and by the rules its
// mark matches (`fwmark N`).
func (c *Conn) WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (n int, err error) {
	return c.sys.writeBatch(pkts, ifindex, mark)
}

// ErrorKind says what an Error reports.
type ErrorKind uint8

const (
	// TooBig: the datagram did not fit the path (ICMP Fragmentation
	// Needed, or the kernel refusing a send larger than the path MTU it
	// learnt); MTU is the path's.
	TooBig ErrorKind = iota + 1
	// Unreachable: the destination answered ICMP Port Unreachable (no
	// socket on that port there).
	Unreachable
	// OtherError: another ICMP error (host or network unreachable, …).
	OtherError
)

// Error is what the kernel reported, through the socket's error queue
// (IP_RECVERR), about a datagram this socket sent. The socket has
// IP_RECVERR on: without it an unconnected UDP socket hears of no ICMP
// error at all.
type Error struct {
	Kind ErrorKind
	To   netip.AddrPort // the datagram's destination
	From netip.Addr     // who reported it: a router, or this host
	MTU  int            // TooBig: the path MTU (of whole IP packets)
	// Payload is the start of the datagram's payload as quoted (a GRE
	// header, say), aliasing a buffer valid only during the callback.
	Payload []byte
}

// OnError makes fn hear of every Error, called by the goroutine reading
// the socket (ReadBatch, or ServeErrors for a socket that only sends),
// which drains the error queue whenever the kernel flags a pending error.
// Set it before reading starts.
func (c *Conn) OnError(fn func(Error)) { c.sys.onError = fn }

// ServeErrors is the reading of a socket that only sends (one of a pool
// of source ports): it blocks, draining the error queue into OnError's
// fn and discarding any datagram that arrives, until the socket is
// closed; then it returns net.ErrClosed.
func (c *Conn) ServeErrors() error { return c.sys.serveErrors() }

// Close closes the socket; a blocked ReadBatch returns net.ErrClosed.
func (c *Conn) Close() error { return c.sys.close() }

// Stats are a Conn's own counters.
type Stats struct {
	// Truncated counts datagrams larger than the buffer offered for them
	// (and segments of a coalesced one that found no buffer).
	Truncated uint64
	// Coalesced counts received datagrams that UDP GRO had coalesced from
	// several.
	Coalesced uint64
}

// Stats returns a snapshot of the Conn's counters.
func (c *Conn) Stats() Stats {
	return Stats{Truncated: c.truncated.Load(), Coalesced: c.coalesced.Load()}
}
