package tunnel

import (
	"context"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// Underlay is the engine's seam to the raw sockets (rawsock.Conn), so the
// data path can run over in-memory fakes in tests and benchmarks. Every
// tunnel's sending goroutine calls WriteBatch, so it must be safe for
// concurrent use; ReadBatch has one caller.
type Underlay interface {
	ReadBatch(bufs [][]byte, sizes []int) (int, error)
	WriteBatch(pkts [][]byte) (int, error)
	Close() error
}

// Host is what the engine asks of the host's network configuration
// (netconf over netlink in production).
type Host interface {
	// HasLocalAddr reports whether a is configured on this host.
	HasLocalAddr(a netip.Addr) (bool, error)
	// LinkExists reports whether a network device of that name exists.
	LinkExists(name string) (bool, error)
	// RouteMTU is the MTU of the underlay device the route toward dst
	// leaves by, lowered by the route's own mtu metric but never by a path
	// MTU learnt from ICMP (netconf.RouteMTU).
	RouteMTU(dst netip.Addr) (int, error)
	// PrepareDevice brings a new TUN device up with its MTU and makes the
	// kernel skip its routes while its carrier is off.
	PrepareDevice(name string, mtu int) error
	// SetMTU changes a device's MTU.
	SetMTU(name string, mtu int) error
	// SetCarrier turns a TUN device's carrier (line protocol) on or off.
	SetCarrier(dev tun.Device, up bool) error
}

// Env is how the engine reaches devices, sockets and the host.
type Env struct {
	CreateTUN    func(name string, mtu int) (tun.Device, error)
	OpenUnderlay func(proto int) (Underlay, error)
	Host         Host

	// Optional: underlay ICMP reports and link events for path MTU.
	OpenICMP   func() (ICMPSource, error)
	WatchLinks func(ctx context.Context, fn func(LinkEvent)) error

	// Optional: every device's IPv6 addresses by device name, read again
	// each time WatchAddrs calls its fn (once at the start, then after
	// every address change), for the source of ICMPv6 errors about
	// multicast packets (see Tunnel.icmpSource).
	DeviceAddrs func() (map[string][]netip.Addr, error)
	WatchAddrs  func(ctx context.Context, changed func()) error

	// Optional: the AF_PACKET send path of `underlay packet` tunnels (see
	// packetpath.go). When either is nil, as over fakes, those tunnels
	// send on the raw socket like the others.
	ResolveNextHop func(remote netip.Addr) (NextHop, error)
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
// goroutine uses it.
type PacketWriter interface {
	WriteBatch(frames [][]byte) (int, error)
	Close() error
}

// LinkEvent is a link change in the engine's network namespace.
type LinkEvent struct {
	Name string
	MTU  int
}
