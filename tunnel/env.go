package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/udpsock"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/gretun/gretun/config"
)

// Underlay is the engine's seam to how outer packets leave and arrive:
// raw IPv4 sockets today (rawsock through RawIPv4), UDP (RFC 8086) and raw
// IPv6 next, in-memory fakes in tests (tunneltest). One underlay serves
// every tunnel of its UnderlayKey: each tunnel's sending goroutine calls
// WriteBatch, so it must be safe for concurrent use; ReadBatch has one
// caller, the underlay's receive loop.
//
// The error contract is rawsock's (rawsock/errors.go), for every underlay:
//
//   - ReadBatch: net.ErrClosed or os.ErrClosed once closed, and the loop
//     returns; any other error read nothing, and the loop retries after a
//     bounded back-off.
//   - WriteBatch returns (n, err): packets [0, n) were sent, packet n
//     failed with err, the rest were not tried. The engine drops packet n,
//     counts it by err (countSendError: ENOBUFS, EHOSTUNREACH, EMSGSIZE …)
//     and goes on with pkts[n+1:]; after EMSGSIZE it re-reads the underlay
//     MTU. net.ErrClosed ends the batch, every packet left counted.
type Underlay interface {
	// ReadBatch blocks until at least one outer packet arrives, then
	// fills bufs[i][:sizes[i]] for i < n, and from[i] with the endpoint
	// it came from where the packet does not carry it itself (a UDP
	// source). A raw IP underlay hands the packet with its IP header,
	// whose addresses decap reads, and leaves from untouched.
	ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (n int, err error)
	// WriteBatch sends pkts, each an outer packet as encap built it, to
	// the endpoint to (a UDP underlay's destination). A raw IP underlay
	// routes each packet by the destination in its own header, which for
	// a tunnel's packets is to; the zero endpoint, for packets that are
	// forwarded rather than sent to a peer (reflected keepalive probes),
	// says to go by the header.
	WriteBatch(pkts [][]byte, to netip.AddrPort) (n int, err error)
	// Headroom is the room in front of each packet that WriteBatch fills
	// with a header of its own (AF_PACKET's Ethernet header): pkts[i]
	// starts Headroom bytes before the outer packet. 0 for IP sockets.
	Headroom() int
	// HeaderLen is the outer header the underlay puts in front of what
	// WriteBatch is given, which the tunnel MTU leaves room for beside
	// the encapsulation (socket.overhead): 0 for raw IP (encap writes the
	// IP header) and for UDP sockets (encap writes IPv4 and UDP, counted
	// in its overhead, and udpsock has the kernel write them alike).
	HeaderLen() int
	// GSO reports whether WriteBatch takes a GSO batch: consecutive
	// packets of one size to one endpoint sent as one super-packet
	// (UDP_SEGMENT). Raw IP sockets have no segmentation offload.
	GSO() bool
	Close() error
}

// UnderlayKey says which underlay a tunnel uses; tunnels with equal keys
// share one. Raw underlays are told apart by address family and IP
// protocol (4 or 47 over IPv4; 4, 41 or 47 over IPv6). A UDP underlay
// (encap fou) is a socket bound to a local address and port (Port not 0),
// carrying Proto inside UDP, as `ip fou add port Port ipproto Proto local
// Local` would.
type UnderlayKey struct {
	Proto uint8
	IPv6  bool       // a raw IPv6 underlay: whole IPv6 packets both ways (RawIPv6)
	Local netip.Addr // UDP only
	Port  uint16     // UDP only: the port the underlay receives on
}

// UDP reports whether k is a UDP underlay.
func (k UnderlayKey) UDP() bool { return k.Port != 0 }

// RawConn is a raw IP socket's batch interface (rawsock.Conn, and
// tunneltest.Socket over fake wires): packets carry their own addresses.
type RawConn interface {
	ReadBatch(bufs [][]byte, sizes []int) (int, error)
	WriteBatch(pkts [][]byte) (int, error)
	Close() error
}

// RawIPv4 puts a raw IPv4 socket behind the Underlay seam. Its packets
// carry both endpoints in their IPv4 header, so it has no endpoint of its
// own to read or write. A socket that completes offloaded checksums
// (rawsock.Conn.CompleteChecksum) keeps doing so.
func RawIPv4(c RawConn) Underlay {
	if cc, ok := c.(checksumCompleter); ok {
		return rawIPOffload{rawIP{c, &ifindexes{}}, cc}
	}
	return rawIP{c, &ifindexes{}}
}

// RawIPv6 puts a raw IPv6 socket (rawsock.Conn6) behind the Underlay seam
// on the same terms: whole IPv6 packets both ways, as encap builds them and
// as decap.Parse6 reads them, each routed by the destination in its header,
// and offloaded checksums completed where the socket can.
func RawIPv6(c RawConn) Underlay { return RawIPv4(c) }

// Egress is how a tunnel's outer packets leave, where it asks for more
// than the routes' choice: out of a named device (`dev NAME`, the kernel's
// link: routed as if the routes out of it were the only ones; a link-local
// destination needs it) and with a firewall mark (`fwmark N`: policy
// routing and netfilter see it). The zero Egress asks for nothing.
type Egress struct {
	Dev  string
	Mark uint32
}

// EgressWriter is an underlay that can send as an Egress asks:
// WriteBatch, out of e.Dev and marked e.Mark.
type EgressWriter interface {
	WriteBatchEgress(pkts [][]byte, to netip.AddrPort, e Egress) (int, error)
}

// outWriter is a socket that sends out of the device with an index and
// with a mark (rawsock.Conn, rawsock.Conn6, udpsock.Conn: IP_PKTINFO,
// IPV6_PKTINFO and SO_MARK control messages).
type outWriter interface {
	WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (int, error)
}

// errNoEgress is what sending out of a device, or marked, on a socket
// that cannot says.
var errNoEgress = errors.New("this underlay cannot send out of a named device or mark packets")

// ifindexes keeps the index of each device tunnels send out of, looked
// up by name once (a dump of every link: not on each send) and again
// after the kernel said no device has it (ENODEV: the device went, and may
// come back with another index).
type ifindexes struct {
	mu sync.Mutex
	m  map[string]int
	// missing is when a device was last looked up and not found: it is
	// looked up again only missingRetry later, not for every packet.
	missing map[string]time.Time
}

// missingRetry is how long a device that was not found stays so.
const missingRetry = 500 * time.Millisecond

// writeOut sends pkts on c as e asks.
func (x *ifindexes) writeOut(c RawConn, pkts [][]byte, e Egress) (int, error) {
	w, ok := c.(outWriter)
	if !ok {
		return 0, errNoEgress
	}
	if e.Dev == "" {
		return w.WriteBatchOut(pkts, 0, e.Mark)
	}
	i, err := x.index(e.Dev)
	if err != nil {
		return 0, err
	}
	n, err := w.WriteBatchOut(pkts, i, e.Mark)
	if errors.Is(err, syscall.ENODEV) {
		x.mu.Lock()
		delete(x.m, e.Dev)
		x.mu.Unlock()
	}
	return n, err
}

// index is dev's index, from the cache or looked up.
func (x *ifindexes) index(dev string) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if i, ok := x.m[dev]; ok {
		return i, nil
	}
	if at, gone := x.missing[dev]; gone && time.Since(at) < missingRetry {
		return 0, fmt.Errorf("dev %s: %w", dev, syscall.ENODEV)
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		if x.missing == nil {
			x.missing = map[string]time.Time{}
		}
		x.missing[dev] = time.Now()
		return 0, fmt.Errorf("dev %s: %v: %w", dev, err, syscall.ENODEV)
	}
	delete(x.missing, dev)
	if x.m == nil {
		x.m = map[string]int{}
	}
	x.m[dev] = ifi.Index
	return ifi.Index, nil
}

type rawIP struct {
	c    RawConn
	devs *ifindexes
}

func (u rawIP) ReadBatch(bufs [][]byte, sizes []int, _ []netip.AddrPort) (int, error) {
	return u.c.ReadBatch(bufs, sizes)
}

func (u rawIP) WriteBatch(pkts [][]byte, _ netip.AddrPort) (int, error) {
	return u.c.WriteBatch(pkts)
}

func (u rawIP) WriteBatchEgress(pkts [][]byte, _ netip.AddrPort, e Egress) (int, error) {
	return u.devs.writeOut(u.c, pkts, e)
}

func (rawIP) HeaderLen() int { return 0 }
func (rawIP) Headroom() int  { return 0 }
func (rawIP) GSO() bool      { return false }
func (u rawIP) Close() error { return u.c.Close() }

// UDPIPv4 puts UDP sockets behind the Underlay seam (udpsock.Conn, and
// tunneltest's fake over a Wire): they take and return whole IPv4/UDP
// packets (IPv6/UDP on an IPv6 address), encap's and decap.ParseUDP's shape, and send GSO runs as one.
// c is bound to the port the underlay receives on, port, and sends the
// packets whose UDP source port is that port (`encap-sport` N). The
// others, from tunnels with `encap-sport auto`, carry their flow's port
// (encap.FlowPort) and leave from one of the pool's sockets, bound to
// ports of their own, chosen by it: a socket cannot send from any other
// port than its own, and a flow (a TSO super-packet's segments) keeps one
// socket and one GSO send. Without a pool they all leave from c. Only c
// is read.
func UDPIPv4(c RawConn, port uint16, pool []RawConn) Underlay {
	return &udpIPv4{rawIP: rawIP{c, &ifindexes{}}, port: port, pool: pool}
}

type udpIPv4 struct {
	rawIP
	port uint16
	pool []RawConn
}

func (*udpIPv4) GSO() bool { return true }

// WriteBatch sends each run of packets that leave from one socket with
// one call, keeping the Underlay error contract across the runs.
func (u *udpIPv4) WriteBatch(pkts [][]byte, _ netip.AddrPort) (int, error) {
	return u.write(pkts, Egress{})
}

// WriteBatchEgress is WriteBatch as e asks.
func (u *udpIPv4) WriteBatchEgress(pkts [][]byte, _ netip.AddrPort, e Egress) (int, error) {
	return u.write(pkts, e)
}

func (u *udpIPv4) write(pkts [][]byte, e Egress) (int, error) {
	for i := 0; i < len(pkts); {
		c := u.connFor(pkts[i])
		j := i + 1
		for j < len(pkts) && u.connFor(pkts[j]) == c {
			j++
		}
		var n int
		var err error
		if e == (Egress{}) {
			n, err = c.WriteBatch(pkts[i:j])
		} else {
			n, err = u.devs.writeOut(c, pkts[i:j], e)
		}
		if err != nil {
			return i + n, err
		}
		i = j
	}
	return len(pkts), nil
}

// connFor is the socket packet p leaves from, by its UDP source port.
func (u *udpIPv4) connFor(p []byte) RawConn {
	at := udpAt(p)
	if len(u.pool) == 0 || at < 0 {
		return u.c
	}
	sport := header.UDP(p[at:]).SrcPort()
	if sport == u.port {
		return u.c
	}
	return u.pool[int(sport)%len(u.pool)]
}

// udpAt is where the UDP header of an outer packet as encap builds it
// starts: after IPv4 without options, or IPv6 and perhaps its
// encapsulation limit option; -1 if p is too short to hold it.
func udpAt(p []byte) int {
	at := header.IPv4MinLen
	if len(p) > 0 && p[0]>>4 == 6 {
		at = header.IPv6HeaderLen
		if len(p) > at && header.IPv6(p).NextHeader() == header.IPv6DestOpts {
			at += header.IPv6ExtMinLen
		}
	}
	if len(p) < at+header.UDPLen {
		return -1
	}
	return at
}

// OnError has every socket report the errors about what it sent; the
// pool's sockets, which nothing else reads, get a goroutine each that
// waits for them (udpsock.Conn.ServeErrors) until they are closed.
func (u *udpIPv4) OnError(fn func(udpsock.Error)) {
	for _, c := range append([]RawConn{u.c}, u.pool...) {
		if r, ok := c.(errorReporter); ok {
			r.OnError(fn)
		}
	}
	for _, c := range u.pool {
		if s, ok := c.(interface{ ServeErrors() error }); ok {
			go s.ServeErrors()
		}
	}
}

func (u *udpIPv4) Close() error {
	for _, c := range u.pool {
		c.Close()
	}
	return u.c.Close()
}

type rawIPOffload struct {
	rawIP
	checksumCompleter
}

// Device is the engine's seam to where inner packets come from and go to:
// wireguard's tun.Device (batch Read and Write at an offset, BatchSize,
// MTU) and what else the engine needs of a device, asked of the device
// itself: a userspace TCP/IP stack (wireguard's tun/netstack) has no name
// and no kernel link to look up. Behind it: TUN and TAP devices (tundev)
// and userspace stacks (stackdev). The engine never looks a device up by
// name on its data path.
type Device interface {
	tun.Device
	// Payload is what the device's packets are: IP packets (TUN,
	// netstack) or Ethernet frames (TAP).
	Payload() Payload
	// Headroom is the room the device needs in front of each packet it
	// reads or writes (a TUN's virtio-net header), at most maxHeadroom:
	// Read and Write get an offset at least this large.
	Headroom() int
	// Up brings a new device up with its MTU, and has the host skip
	// routes through it while its carrier is off (SetCarrier).
	Up(mtu int) error
	// SetMTU changes the device's MTU.
	SetMTU(mtu int) error
	// SetCarrier turns the device's carrier (line protocol) on or off.
	SetCarrier(up bool) error
	// Addrs are the device's own addresses when it holds them itself (a
	// userspace stack, which has no kernel link to read them from), nil
	// when the host holds them (a TUN's are read by its name through
	// Env.DeviceAddrs).
	Addrs() []netip.Addr
}

// Payload is what a device's packets are.
type Payload uint8

const (
	PayloadIP       Payload = iota // IPv4 and IPv6 packets
	PayloadEthernet                // Ethernet frames
)

// Host is what the engine asks of the host's network configuration
// (netconf over netlink in production).
type Host interface {
	// HasLocalAddr reports whether a is configured on this host.
	HasLocalAddr(a netip.Addr) (bool, error)
	// LinkExists reports whether a network device of that name exists.
	LinkExists(name string) (bool, error)
	// RouteMTU is the MTU of the underlay device the route toward dst
	// leaves by, lowered by the route's own mtu metric but never by a path
	// MTU learnt from ICMP (netconf.RouteMTU). The route is the one a
	// packet that leaves as out asks takes: out of its device, marked.
	RouteMTU(dst netip.Addr, out Egress) (int, error)
}

// Env is how the engine reaches devices, sockets and the host.
type Env struct {
	CreateDevice func(name string, mtu int) (Device, error)
	// CreateStack creates the userspace stack that replaces the TUN
	// device of a `netstack` tunnel, with the services it serves
	// (stackdev in production). Nil refuses netstack tunnels.
	CreateStack func(c *config.Tunnel, mtu int, log *slog.Logger) (Device, error)
	// CreateTAP creates the Ethernet device (PayloadEthernet) of a
	// gretap tunnel; gretap tunnels are refused when it is nil.
	CreateTAP    func(name string, mtu int) (Device, error)
	OpenUnderlay func(k UnderlayKey) (Underlay, error)
	Host         Host

	// Optional: underlay ICMP reports (Fragmentation Needed over IPv4,
	// Packet Too Big over IPv6) and link events for path MTU.
	OpenICMP   func() (ICMPSource, error)
	OpenICMP6  func() (ICMPSource, error)
	WatchLinks func(ctx context.Context, fn func(LinkEvent)) error

	// Optional: every device's IPv6 addresses by device name, read again
	// each time WatchAddrs calls its fn (once at the start, then after
	// every address change), for the source of ICMPv6 errors about
	// multicast packets (see Tunnel.icmpSource).
	DeviceAddrs func() (map[string][]netip.Addr, error)
	WatchAddrs  func(ctx context.Context, changed func()) error

	// Optional: whether this process may mark packets (netconf.CanMark),
	// asked before a tunnel with `fwmark` is added; nil, as over fakes,
	// takes every mark.
	CanMark func() error

	// Optional: the AF_PACKET send path of `underlay packet` tunnels (see
	// packetpath.go). When either is nil, as over fakes, those tunnels
	// send on the raw socket like the others.
	ResolveNextHop func(remote netip.Addr, dev string) (NextHop, error)
	OpenPacket     func(ifindex int) (PacketWriter, error)

	// Optional: the clock, for tests that step time rather than sleep
	// (time.Now when nil). The AF_PACKET path's retries use it.
	Now func() time.Time
}

// now reads the environment's clock.
func (env *Env) now() time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

// PacketWriter sends whole Ethernet frames on one device (pktsock.Conn),
// with rawsock's error contract: on error, n is the frame that failed. One
// goroutine uses it, through the Underlay seam (packetUnderlay).
type PacketWriter interface {
	WriteBatch(frames [][]byte) (int, error)
	Close() error
}

// LinkEvent is a link change in the engine's network namespace.
type LinkEvent struct {
	Name string
	MTU  int
}
