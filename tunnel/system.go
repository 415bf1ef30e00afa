package tunnel

import (
	"context"
	"net/netip"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/gretun/gretun/netconf"
	"github.com/gretun/gretun/pktsock"
	"github.com/gretun/gretun/rawsock"
)

// SystemEnv reaches the real host: TUN devices through wireguard's tun
// package (with offloads and batching), raw sockets through rawsock and
// netlink through netconf.
func SystemEnv() Env {
	return Env{
		CreateTUN:    createTUN,
		OpenUnderlay: openUnderlay,
		Host:         systemHost{},
		OpenICMP:     func() (ICMPSource, error) { return rawsock.OpenICMP() },
		WatchLinks: func(ctx context.Context, fn func(LinkEvent)) error {
			return netconf.WatchLinks(ctx, func(ev netconf.LinkEvent) { fn(LinkEvent{Name: ev.Name, MTU: ev.MTU}) })
		},
		DeviceAddrs:    netconf.Addrs6,
		WatchAddrs:     netconf.WatchAddrs,
		ResolveNextHop: resolveNextHop,
		OpenPacket:     func(ifindex int) (PacketWriter, error) { return pktsock.Open(ifindex) },
	}
}

// openUnderlay opens the raw IPv4 socket for k's protocol.
func openUnderlay(k UnderlayKey) (Underlay, error) {
	c, err := rawsock.Open(int(k.Proto))
	if err != nil {
		return nil, err
	}
	return RawIPv4(c), nil
}

// rawsock.Conn is a raw IPv4 socket that completes offloaded checksums.
var (
	_ RawConn           = (*rawsock.Conn)(nil)
	_ checksumCompleter = (*rawsock.Conn)(nil)
)

type systemHost struct{}

func (systemHost) HasLocalAddr(a netip.Addr) (bool, error) { return netconf.HasLocalAddr(a) }

func (systemHost) LinkExists(name string) (bool, error) {
	_, err := netconf.LinkIndex(name)
	return err == nil, nil
}

func (systemHost) RouteMTU(dst netip.Addr) (int, error) {
	mtu, _, err := netconf.RouteMTU(dst)
	return mtu, err
}

func (systemHost) PrepareDevice(name string, mtu int) error {
	if err := netconf.IgnoreRoutesWithLinkdown(name); err != nil {
		return err
	}
	if err := netconf.SetMTU(name, mtu); err != nil {
		return err
	}
	return netconf.SetUp(name)
}

func (systemHost) SetMTU(name string, mtu int) error { return netconf.SetMTU(name, mtu) }

func (systemHost) SetCarrier(dev tun.Device, up bool) error {
	return netconf.SetCarrier(dev.File(), up)
}
