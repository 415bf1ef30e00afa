package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
)

// The `underlay packet` send path. BENCHMARKS.md ("Underlay send path: raw
// socket vs AF_PACKET") measured an AF_PACKET socket with the qdisc
// bypassed sending about 1.5x the packets of the raw IP socket. The price
// is doing what the kernel does for the raw socket: pick the egress device
// and the next hop's MAC address (done here, from the kernel's route and
// neighbour tables), and losing what it adds: netfilter, policy routing
// and the qdisc are bypassed, which is why the path is opt-in. Anything
// the path cannot take (fragments, a non-Ethernet egress device, a
// neighbour not yet resolved) goes on the raw socket, and receiving always
// does.

// ethHeaderLen is the Ethernet II header written in front of each outer
// packet; the buffers' headroom leaves room for it (see frameHeadroom).
const ethHeaderLen = header.EthernetHeaderLen

// The build fails here if the read buffers' headroom in front of the
// largest outer header could not hold an Ethernet header.
const _ = uint(innerOffset - encap.Headroom - ethHeaderLen)

// How often the next hop is looked up again: after a failure or a send
// error first after pathFirstRetry, doubling up to pathRetry while it keeps
// failing, and while it works once a refresh, to follow route and neighbour
// changes. The short first retry matters at start: the packets the raw
// socket sends meanwhile make the kernel resolve the neighbour within
// milliseconds, and a short transfer should not spend its whole life on
// the raw socket waiting for a one-second retry.
const (
	pathFirstRetry = 10 * time.Millisecond
	pathRetry      = time.Second
	pathRefresh    = 5 * time.Second
)

// NextHop is where the outer packets toward a remote leave: the egress
// device and the Ethernet addresses of the frames.
type NextHop struct {
	Ifindex  int
	Src, Dst net.HardwareAddr
	// Confirmed says the neighbour entry is REACHABLE or permanent. A
	// STALE one still has a usable address, but the kernel only checks it
	// again when it sends to it itself: see packetPath.kick.
	Confirmed bool
}

// errNoNeighbour is a next hop whose MAC address the kernel does not know
// (yet): its packets go on the raw socket, which makes the kernel resolve it.
var errNoNeighbour = errors.New("no resolved neighbour entry for the next hop")

// packetPath is one tunnel's AF_PACKET sending state. The tunnel's
// transmit goroutine owns it.
type packetPath struct {
	t       *Tunnel
	remote  netip.Addr
	dev     string // the tunnel's `dev`, the device the route is looked up out of
	ok      bool
	hdr     [ethHeaderLen]byte
	ifindex int
	conn    Underlay      // a packetUnderlay, nil while closed
	at      time.Time     // last resolution
	retry   time.Duration // wait before the next resolution while not ok
	stale   bool          // a send error asked for a new resolution
	kick    bool          // send one packet on the raw socket to make the kernel confirm the neighbour
	lastErr string        // last resolution error logged
	frames  [][]byte      // per outer packet of the batch: its Ethernet frame, nil when it has no room
}

// ready reports whether this batch may use the packet socket, resolving
// the next hop toward remote (out of device dev, when the tunnel names
// one) first when that is due.
func (p *packetPath) ready(remote netip.Addr, dev string, now time.Time) bool {
	env := &p.t.e.env
	if env.ResolveNextHop == nil || env.OpenPacket == nil {
		return false
	}
	age := now.Sub(p.at)
	if remote != p.remote || dev != p.dev || age >= pathRefresh || (p.stale || !p.ok) && age >= p.retry {
		p.resolve(remote, dev, now)
	}
	return p.ok
}

// invalidate is for a send error: use the raw socket until the next
// resolution, pathRetry later.
func (p *packetPath) invalidate() { p.ok, p.stale, p.retry = false, true, pathRetry }

func (p *packetPath) resolve(remote netip.Addr, dev string, now time.Time) {
	p.remote, p.dev, p.at, p.stale = remote, dev, now, false
	wasOK := p.ok
	p.ok = false
	nh, err := p.t.e.env.ResolveNextHop(remote, dev)
	if err == nil && nh.Ifindex != p.ifindex {
		p.close()
		var conn PacketWriter
		if conn, err = p.t.e.env.OpenPacket(nh.Ifindex); err == nil {
			p.conn, p.ifindex = &packetUnderlay{w: conn, hdr: &p.hdr}, nh.Ifindex
		}
	}
	if err != nil {
		p.retry = min(max(2*p.retry, pathFirstRetry), pathRetry)
		if msg := err.Error(); msg != p.lastErr || wasOK {
			p.lastErr = msg
			p.t.e.log.Warn("underlay packet: sending on the raw socket for now", "tunnel", p.t.name, "remote", remote, "err", err)
		}
		return
	}
	header.Ethernet(p.hdr[:]).Encode(nh.Dst, nh.Src, header.EtherTypeIPv4)
	p.ok, p.kick, p.retry = true, !nh.Confirmed, 0
	if !wasOK {
		p.lastErr = ""
		p.t.e.log.Info("underlay packet: sending on AF_PACKET", "tunnel", p.t.name, "remote", remote, "ifindex", nh.Ifindex, "dst", nh.Dst)
	}
}

func (p *packetPath) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.ifindex, p.ok = nil, 0, false
	}
}

// packetUnderlay is an AF_PACKET socket (pktsock.Conn) behind the Underlay
// seam, for sending: each frame starts with Headroom bytes of room, where
// it writes the Ethernet header toward the next hop packetPath resolved
// for the peer's endpoint, and goes straight to the device's driver.
// Receiving stays on the raw socket.
type packetUnderlay struct {
	w   PacketWriter
	hdr *[ethHeaderLen]byte // packetPath.hdr
}

// errSendOnly is what reading from a send-only underlay returns.
var errSendOnly = errors.New("underlay packet: an AF_PACKET socket only sends")

func (u *packetUnderlay) ReadBatch([][]byte, []int, []netip.AddrPort) (int, error) {
	return 0, errSendOnly
}

func (u *packetUnderlay) WriteBatch(frames [][]byte, _ netip.AddrPort) (int, error) {
	for _, f := range frames {
		copy(f, u.hdr[:])
	}
	return u.w.WriteBatch(frames)
}

// WriteBatchEgress is WriteBatch: the frames leave by the device
// packetPath resolved, out of the tunnel's `dev` when it names one (config
// refuses `fwmark` here: these frames skip routing by mark).
func (u *packetUnderlay) WriteBatchEgress(frames [][]byte, to netip.AddrPort, _ Egress) (int, error) {
	return u.WriteBatch(frames, to)
}

func (*packetUnderlay) HeaderLen() int { return 0 }
func (*packetUnderlay) Headroom() int  { return ethHeaderLen }
func (*packetUnderlay) GSO() bool      { return false }
func (u *packetUnderlay) Close() error { return u.w.Close() }

// usePacketPath says whether the tunnel's configuration asks for the
// AF_PACKET send path.
func usePacketPath(c *config.Tunnel) bool { return c.Underlay == config.UnderlayPacket }

// resolveNextHop finds, through netlink, the egress device and next hop
// the kernel's main routing decision picks for remote, and the Ethernet
// addresses of frames toward it. Policy routing by source or mark is not
// taken into account (documented for `underlay packet`).
func resolveNextHop(remote netip.Addr, dev string) (NextHop, error) {
	routes, err := netlink.RouteGetWithOptions(remote.AsSlice(), &netlink.RouteGetOptions{Oif: dev})
	if err != nil {
		return NextHop{}, fmt.Errorf("route to %s: %w", remote, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex <= 0 {
		return NextHop{}, fmt.Errorf("no route to %s", remote)
	}
	r := routes[0]
	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return NextHop{}, fmt.Errorf("egress device %d: %w", r.LinkIndex, err)
	}
	a := link.Attrs()
	if typ := link.Type(); typ != "veth" && typ != "device" || len(a.HardwareAddr) != 6 || a.Flags&net.FlagLoopback != 0 {
		return NextHop{}, fmt.Errorf("egress device %s (%s) is not Ethernet", a.Name, link.Type())
	}
	hop := remote.AsSlice()
	if r.Gw != nil {
		hop = r.Gw
	}
	neighs, err := netlink.NeighList(r.LinkIndex, netlink.FAMILY_V4)
	if err != nil {
		return NextHop{}, fmt.Errorf("neighbours of %s: %w", a.Name, err)
	}
	const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	const confirmed = netlink.NUD_REACHABLE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	for _, n := range neighs {
		if !n.IP.Equal(hop) || n.State&usable == 0 || len(n.HardwareAddr) != 6 || isZeroMAC(n.HardwareAddr) {
			continue
		}
		return NextHop{Ifindex: r.LinkIndex, Src: a.HardwareAddr, Dst: n.HardwareAddr, Confirmed: n.State&confirmed != 0}, nil
	}
	return NextHop{}, fmt.Errorf("%w %s on %s", errNoNeighbour, net.IP(hop), a.Name)
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}
