package netconf

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddPeerAddr puts the point-to-point address local peer PEER/32 on link
// name, as `ip addr add LOCAL peer PEER dev NAME` does: the kernel then
// routes PEER through name (a PPP link's addresses).
func AddPeerAddr(name string, local, peer netip.Addr) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	bits := local.BitLen()
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: local.AsSlice(), Mask: net.CIDRMask(bits, bits)},
		Peer:  &net.IPNet{IP: peer.AsSlice(), Mask: net.CIDRMask(bits, bits)},
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("netconf: add %s peer %s to %s: %w", local, peer, name, err)
	}
	return nil
}
