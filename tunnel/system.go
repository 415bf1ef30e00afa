package tunnel

import (
	"context"
	"net/netip"

	"github.com/gretun/gretun/netconf"
	"github.com/gretun/gretun/pktsock"
	"github.com/gretun/gretun/rawsock"
	"github.com/gretun/gretun/tundev"
	"github.com/gretun/gretun/udpsock"
)

// SystemEnv reaches the real host: TUN devices through wireguard's tun
// package (with offloads and batching), raw sockets through rawsock and
// netlink through netconf.
func SystemEnv() Env {
	return Env{
		CreateDevice: createDevice,
		CreateStack:  createStack,
		CreateTAP:    createTAP,
		OpenUnderlay: openUnderlay,
		Host:         systemHost{},
		OpenICMP:     func() (ICMPSource, error) { return rawsock.OpenICMP() },
		OpenICMP6:    func() (ICMPSource, error) { return rawsock.OpenICMP6() },
		WatchLinks: func(ctx context.Context, fn func(LinkEvent)) error {
			return netconf.WatchLinks(ctx, func(ev netconf.LinkEvent) { fn(LinkEvent{Name: ev.Name, MTU: ev.MTU}) })
		},
		DeviceAddrs:    netconf.Addrs6,
		WatchAddrs:     netconf.WatchAddrs,
		CanMark:        netconf.CanMark,
		ResolveNextHop: resolveNextHop,
		OpenPacket:     func(ifindex int) (PacketWriter, error) { return pktsock.Open(ifindex) },
	}
}

// openUnderlay opens the raw IPv4 or IPv6 socket for k's protocol, or k's
// UDP socket.
func openUnderlay(k UnderlayKey) (Underlay, error) {
	if k.UDP() {
		return openUDP(k)
	}
	if k.IPv6 {
		c, err := rawsock.Open6(int(k.Proto))
		if err != nil {
			return nil, err
		}
		return RawIPv6(c), nil
	}
	c, err := rawsock.Open(int(k.Proto))
	if err != nil {
		return nil, err
	}
	return RawIPv4(c), nil
}

// udpPool is how many sockets send the packets of `encap-sport auto`
// tunnels on one UDP underlay: as many source ports for ECMP to spread
// flows over (UDPIPv4).
const udpPool = 16

// openUDP binds k's UDP socket and the pool of sockets on ports of their
// own that packets with per-flow source ports leave from.
func openUDP(k UnderlayKey) (Underlay, error) {
	c, err := udpsock.Open(netip.AddrPortFrom(k.Local, k.Port), udpsock.Options{})
	if err != nil {
		return nil, err
	}
	pool := make([]RawConn, 0, udpPool)
	for range udpPool {
		p, err := udpsock.Open(netip.AddrPortFrom(k.Local, 0), udpsock.Options{NoGRO: true})
		if err != nil {
			c.Close()
			for _, p := range pool {
				p.Close()
			}
			return nil, err
		}
		pool = append(pool, p)
	}
	return UDPIPv4(c, k.Port, pool), nil
}

// rawsock.Conn is a raw IPv4 socket that completes offloaded checksums.
var (
	_ RawConn           = (*rawsock.Conn)(nil)
	_ checksumCompleter = (*rawsock.Conn)(nil)
	_ RawConn           = (*rawsock.Conn6)(nil)
	_ checksumCompleter = (*rawsock.Conn6)(nil)
)

type systemHost struct{}

func (systemHost) HasLocalAddr(a netip.Addr) (bool, error) { return netconf.HasLocalAddr(a) }

func (systemHost) LinkExists(name string) (bool, error) {
	_, err := netconf.LinkIndex(name)
	return err == nil, nil
}

func (systemHost) RouteMTU(dst netip.Addr, out Egress) (int, error) {
	mtu, _, err := netconf.RouteMTU(dst, out.Dev, out.Mark)
	return mtu, err
}

// createDevice opens the TUN device name (createTUN) behind the Device seam.
func createDevice(name string, mtu int) (Device, error) {
	d, err := createTUN(name, mtu)
	if err != nil {
		return nil, err
	}
	return tunDevice{d, PayloadIP}, nil
}

// createTAP opens the TAP device name of a gretap tunnel, with offloads.
func createTAP(name string, mtu int) (Device, error) {
	d, err := tundev.OpenTAP(name)
	if err != nil {
		return nil, err
	}
	return tunDevice{d, PayloadEthernet}, nil
}

// tunDevice is a kernel TUN or TAP device (tundev) as the engine's Device:
// it carries IP packets (TUN) or Ethernet frames (TAP) behind a virtio-net
// header, and is configured through netlink by its name, which only the
// device itself uses.
type tunDevice struct {
	*tundev.Device
	payload Payload
}

func (d tunDevice) Payload() Payload { return d.payload }
func (tunDevice) Headroom() int      { return tundev.VirtioHdrLen }

// Addrs is nil: the host holds the device's addresses (Env.DeviceAddrs).
func (tunDevice) Addrs() []netip.Addr { return nil }

func (d tunDevice) Up(mtu int) error {
	name, _ := d.Name()
	if err := netconf.IgnoreRoutesWithLinkdown(name); err != nil {
		return err
	}
	if err := netconf.SetMTU(name, mtu); err != nil {
		return err
	}
	return netconf.SetUp(name)
}

func (d tunDevice) SetMTU(mtu int) error {
	name, _ := d.Name()
	return netconf.SetMTU(name, mtu)
}

func (d tunDevice) SetCarrier(up bool) error { return netconf.SetCarrier(d.File(), up) }
