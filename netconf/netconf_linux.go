package netconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func linkByName(name string) (netlink.Link, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("netconf: link %s: %w", name, err)
	}
	return l, nil
}

// SetUp brings link name administratively up.
func SetUp(name string) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("netconf: set %s up: %w", name, err)
	}
	return nil
}

// SetDown brings link name administratively down.
func SetDown(name string) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return fmt.Errorf("netconf: set %s down: %w", name, err)
	}
	return nil
}

// SetMTU sets the MTU of link name.
func SetMTU(name string, mtu int) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("netconf: set %s mtu %d: %w", name, mtu, err)
	}
	return nil
}

// LinkMTU returns the MTU of link name.
func LinkMTU(name string) (int, error) {
	l, err := linkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().MTU, nil
}

// LinkIndex returns the interface index of link name.
func LinkIndex(name string) (int, error) {
	l, err := linkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// Carrier reports whether link name is up with its lower layer up
// (IFF_LOWER_UP), as `ip link` shows LOWER_UP.
func Carrier(name string) (bool, error) {
	l, err := linkByName(name)
	if err != nil {
		return false, err
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, nil
}

// RouteMTU returns the MTU a tunnel toward dst derives its own from, and
// the name of the device the route leaves by: that device's MTU, lowered by
// an mtu metric set on the route itself (`ip route ... mtu N`), as the
// kernel's ip_tunnel_bind_dev takes the tunnel's MTU from the underlay
// device. A path MTU the kernel learnt from an ICMP Fragmentation Needed
// (a route exception, `ip route get` showing "cache ... mtu N") is not
// reported: anyone on the path can forge one, and it is soft state that
// expires, not a property of the underlay. The route's own metric is read
// from the FIB entry (RTM_F_FIB_MATCH, `ip route get fibmatch`), which
// holds no exceptions; where the kernel lacks that (before 4.13), the
// device's MTU alone is reported.
//
// With via (a tunnel's `dev`, or the zone of a link-local dst) the route
// is looked up as leaving by that device, as the kernel looks up a tunnel
// bound to its link; a link-local dst gets the device's MTU. With mark (a
// tunnel's `fwmark`) it is looked up as for a packet with that mark, which
// policy routing (`ip rule … fwmark`) may send another way.
func RouteMTU(dst netip.Addr, via string, mark uint32) (mtu int, dev string, err error) {
	if !dst.IsValid() {
		return 0, "", errors.New("netconf: route MTU: no destination address")
	}
	if z := dst.Zone(); z != "" && via == "" {
		via = z
	}
	dst = dst.Unmap().WithZone("")
	if via != "" && dst.IsLinkLocalUnicast() {
		// A link-local address names a link: its device's MTU.
		mtu, err := LinkMTU(via)
		return mtu, via, err
	}
	opts := netlink.RouteGetOptions{Oif: via, Mark: mark}
	routes, err := netlink.RouteGetWithOptions(dst.AsSlice(), &opts)
	if err != nil {
		return 0, "", fmt.Errorf("netconf: route to %s: %w", dst, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return 0, "", fmt.Errorf("netconf: route to %s: no output device", dst)
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return 0, "", fmt.Errorf("netconf: route to %s: output link %d: %w", dst, routes[0].LinkIndex, err)
	}
	mtu = l.Attrs().MTU
	// A metric larger than the device's MTU is capped to it: a packet
	// larger than the device's MTU cannot leave at all.
	opts.FIBMatch = true
	fib, err := netlink.RouteGetWithOptions(dst.AsSlice(), &opts)
	if err == nil && len(fib) > 0 && fib[0].MTU > 0 && fib[0].MTU < mtu {
		mtu = fib[0].MTU
	}
	return mtu, l.Attrs().Name, nil
}

// HasLocalAddr reports whether a is configured on an interface of this
// namespace (the IPv6 zone, if any, is ignored). It first asks the routing
// table which device a's local route leads to and lists only that
// device's addresses; only if a is not there does it list every address of
// the namespace, a dump for which the kernel walks every device (with
// 10,000 tunnels, 6 % of the time spent adding them).
func HasLocalAddr(a netip.Addr) (bool, error) {
	if !a.IsValid() {
		return false, errors.New("netconf: local address check: no address")
	}
	a = a.Unmap().WithZone("")
	if dev, ok := localRouteDevice(a); ok && deviceHasAddr(dev, a) {
		return true, nil
	}
	fullAddrDumps.Add(1)
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil {
		return false, fmt.Errorf("netconf: list addresses: %w", err)
	}
	for _, x := range addrs {
		if got, ok := netip.AddrFromSlice(x.IP); ok && got.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// fullAddrDumps counts HasLocalAddr's dumps of every address, for tests.
var fullAddrDumps atomic.Int64

// localRouteDevice returns the device of a's local route (the table entry
// itself, RTM_F_FIB_MATCH, not the loopback a packet to it is routed by).
func localRouteDevice(a netip.Addr) (int, bool) {
	routes, err := netlink.RouteGetWithOptions(a.AsSlice(), &netlink.RouteGetOptions{FIBMatch: true})
	if err != nil || len(routes) == 0 || routes[0].Type != unix.RTN_LOCAL || routes[0].LinkIndex == 0 {
		return 0, false
	}
	return routes[0].LinkIndex, true
}

// deviceHasAddr reports whether a is among the addresses of device index,
// listed by a dump that the kernel filters by device (strict checking,
// Linux 4.20); an older kernel lists them all, and they are filtered here.
func deviceHasAddr(index int, a netip.Addr) bool {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return false
	}
	defer s.Close()
	_ = unix.SetsockoptInt(s.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	family := nl.FAMILY_V4
	if a.Is6() {
		family = nl.FAMILY_V6
	}
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	req.AddData(msg)
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		ifa := nl.DeserializeIfAddrmsg(m)
		if int(ifa.Index) != index {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[ifa.Len():])
		if err != nil {
			continue
		}
		// The address is IFA_LOCAL where there is one (IFA_ADDRESS is then
		// the peer of a point-to-point link), as netlink.AddrList reads it.
		var addr, local []byte
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_ADDRESS:
				addr = at.Value
			case unix.IFA_LOCAL:
				local = at.Value
			}
		}
		if local != nil {
			addr = local
		}
		if got, ok := netip.AddrFromSlice(addr); ok && got.Unmap() == a {
			return true
		}
	}
	return false
}

// IgnoreRoutesWithLinkdown sets ignore_routes_with_linkdown=1 for link name,
// for IPv4 and, when IPv6 is enabled, for IPv6: routes through the link are
// then skipped while its carrier is off, so a user's backup route takes over
// while the tunnel's line protocol is down (see SetCarrier).
func IgnoreRoutesWithLinkdown(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	v4 := "/proc/sys/net/ipv4/conf/" + name + "/ignore_routes_with_linkdown"
	if err := os.WriteFile(v4, []byte("1\n"), 0); err != nil {
		return fmt.Errorf("netconf: %w", err)
	}
	v6 := "/proc/sys/net/ipv6/conf/" + name + "/ignore_routes_with_linkdown"
	if err := os.WriteFile(v6, []byte("1\n"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netconf: %w", err)
	}
	return nil
}

// SetCarrier turns the carrier of a TUN device on or off with the
// TUNSETCARRIER ioctl on its file descriptor: the tunnel's line protocol,
// driven by keepalives. The link stays administratively up; with
// IgnoreRoutesWithLinkdown its routes step aside while the carrier is off.
func SetCarrier(tunFile *os.File, up bool) error {
	if tunFile == nil {
		return errors.New("netconf: set carrier: no TUN file")
	}
	rc, err := tunFile.SyscallConn()
	if err != nil {
		return fmt.Errorf("netconf: set carrier: %w", err)
	}
	v := 0
	if up {
		v = 1
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetPointerInt(int(fd), unix.TUNSETCARRIER, v)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("netconf: set carrier %v: TUNSETCARRIER: %w", up, err)
	}
	return nil
}

// WatchLinks calls fn for every link of the namespace as it is when the
// watch starts, then for every link change (MTU, up/down, carrier, rename,
// deletion), until ctx ends; then it returns nil. Seeing the existing links
// first lets a caller start from a known state without a race against the
// first change. fn runs on one goroutine, in order; a slow fn delays later
// events, and if the kernel's queue overflows the watch ends with an
// error, after which the caller should start it again.
func WatchLinks(ctx context.Context, fn func(LinkEvent)) error {
	return watch(ctx, "links", func(ch chan netlink.LinkUpdate, done chan struct{}, errs func(error)) error {
		if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ErrorCallback: errs}); err != nil {
			return err
		}
		// The links there already, listed once subscribed so no change is
		// missed. Not ListExisting: it sends its dump request to the
		// subscription's multicast groups, which needs CAP_NET_ADMIN (a
		// netstack tunnel runs without it).
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			fn(linkEvent(netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_NEWLINK}, Link: l}))
		}
		return nil
	}, func(u netlink.LinkUpdate) { fn(linkEvent(u)) })
}

// watch runs a netlink subscription (WatchLinks, WatchAddrs): subscribe
// starts it on ch, fn gets each update in order until ctx ends (nil) or
// the subscription does (an error naming what was watched).
func watch[U any](ctx context.Context, what string, subscribe func(ch chan U, done chan struct{}, errs func(error)) error, fn func(U)) error {
	updates := make(chan U, 64)
	done := make(chan struct{})
	var mu sync.Mutex
	var lastErr error
	err := subscribe(updates, done, func(err error) {
		mu.Lock()
		lastErr = err
		mu.Unlock()
	})
	if err != nil {
		close(done)
		return fmt.Errorf("netconf: watch %s: %w", what, err)
	}
	defer func() {
		close(done)
		// The library's receiver closes updates once its socket is
		// closed; drain so it never blocks sending.
		for range updates {
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				return fmt.Errorf("netconf: watch %s: subscription ended: %v", what, lastErr)
			}
			fn(u)
		}
	}
}

func linkEvent(u netlink.LinkUpdate) LinkEvent {
	a := u.Link.Attrs()
	return LinkEvent{
		Index:   a.Index,
		Name:    a.Name,
		MTU:     a.MTU,
		Up:      a.RawFlags&unix.IFF_UP != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		Deleted: u.Header.Type == unix.RTM_DELLINK,
	}
}

// CanMark reports whether this process may mark what it sends with a
// firewall mark (SO_MARK needs CAP_NET_ADMIN or CAP_NET_RAW over the
// network namespace), as a tunnel's `fwmark` asks of every send.
func CanMark() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, 1)
}
