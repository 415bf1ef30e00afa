package tunnel_test

import (
	"net/netip"

	"github.com/gretun/gretun/header"
	"strings"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// ethernetDevice is a fake device carrying Ethernet frames (a TAP), for
// the checks that an L3 tunnel refuses one.
type ethernetDevice struct{ *tunneltest.Device }

func (ethernetDevice) Payload() tunnel.Payload { return tunnel.PayloadEthernet }

// TestEngineRefusesEthernetDevice: a device whose packets are not IP is
// refused with a one-line error and closed, and no tunnel is left.
func TestEngineRefusesEthernetDevice(t *testing.T) {
	var dev *tunneltest.Device
	a := newSide(t, tunneltest.NewWire(), addrA, 8, func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			d, err := create(name, mtu)
			dev = d.(*tunneltest.Device)
			return ethernetDevice{dev}, err
		}
	})
	c, err := config.Parse("t0", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), "carries IP packets") {
		t.Fatalf("Add over an Ethernet device: %v", err)
	}
	if names := a.e.Names(); len(names) != 0 {
		t.Errorf("tunnels left: %v", names)
	}
	if _, err := dev.Write([][]byte{make([]byte, 20)}, 0); err == nil {
		t.Error("the refused device was left open")
	}
}

// udpLike is an underlay that puts an 8-byte header of its own (say, a
// UDP header) in front of what it sends.
type udpLike struct{ tunnel.Underlay }

func (udpLike) HeaderLen() int { return 8 }

// TestEngineUnderlayHeaderLen: the tunnel MTU leaves room for the
// underlay's own header, as it does for the encapsulation.
func TestEngineUnderlayHeaderLen(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenUnderlay = func(k tunnel.UnderlayKey) (tunnel.Underlay, error) {
			return udpLike{tunnel.RawIPv4(w.Open(addrA, int(k.Proto)))}, nil
		}
	})
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	st, err := a.e.Show("t0")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1500 - 24 - 8; st[0].MTU != want || st[0].PathMTU != want {
		t.Errorf("MTU %d, path MTU %d over an underlay with an 8-byte header; want %d", st[0].MTU, st[0].PathMTU, want)
	}
}

// TestEngineDeviceOwnAddrs: a device that holds its own addresses (a
// userspace stack, which the host's address watcher cannot see) gives the
// engine the source of ICMPv6 errors about packets to a group.
func TestEngineDeviceOwnAddrs(t *testing.T) {
	a := newSide(t, tunneltest.NewWire(), addrA, 8, func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			d, err := create(name, mtu)
			d.(*tunneltest.Device).OwnAddrs = []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8:ff::1")}
			return d, err
		}
	})
	a.host.Underlay = 1000
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 1400")
	dev := a.dev("t0")
	dev.Inject(udp6("2001:db8:2::2", "ff0e::1", 1300))
	got := receive(t, dev)
	if src := netip.AddrFrom16(header.IPv6(got).Src()); src.String() != "2001:db8:ff::1" {
		t.Errorf("ICMPv6 error about a group packet from %s, want the device's own 2001:db8:ff::1", src)
	}
}
