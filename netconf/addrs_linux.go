package netconf

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Addrs6 returns the IPv6 addresses of every link by link name, from one
// dump of the links and one of the addresses however many there are.
func Addrs6() (map[string][]netip.Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netconf: list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("netconf: list addresses: %w", err)
	}
	byName := map[string][]netip.Addr{}
	for _, a := range addrs {
		name, ok := names[a.LinkIndex]
		ip, ok2 := netip.AddrFromSlice(a.IP)
		if ok && ok2 {
			byName[name] = append(byName[name], ip)
		}
	}
	return byName, nil
}

// WatchAddrs calls fn once the watch is set up, so the caller can read
// the addresses without missing a change, then after every address change
// in the namespace, until ctx ends; then it returns nil. Like WatchLinks,
// it ends with an error if the kernel's queue overflows.
func WatchAddrs(ctx context.Context, fn func()) error {
	return watch(ctx, "addresses", func(ch chan netlink.AddrUpdate, done chan struct{}, errs func(error)) error {
		err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: errs})
		if err == nil {
			fn()
		}
		return err
	}, func(netlink.AddrUpdate) { fn() })
}
