package netconf

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Addrs6 returns the IPv6 addresses of every link by link name, from one
// dump of the links and one of the addresses however many there are.
func Addrs6() (map[string][]netip.Addr, error) {
	names, err := linkNames()
	if err != nil {
		return nil, fmt.Errorf("netconf: list links: %w", err)
	}
	byName := map[string][]netip.Addr{}
	err = addrs6(func(index int, a netip.Addr) {
		if name, ok := names[index]; ok {
			byName[name] = append(byName[name], a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("netconf: list addresses: %w", err)
	}
	return byName, nil
}

// addrs6 calls fn with every IPv6 address of the namespace and the index
// of its link, decoding only those from the dump (netlink.AddrList makes
// a struct of every attribute: 20,000 addresses at 10,000 tunnels). The
// address is IFA_LOCAL where there is one, else IFA_ADDRESS, as AddrList
// reads it.
func addrs6(fn func(index int, a netip.Addr)) error {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_INET6))
	return req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWADDR, func(m []byte) bool {
		if len(m) < unix.SizeofIfAddrmsg {
			return true
		}
		ifa := nl.DeserializeIfAddrmsg(m)
		if ifa.Family != unix.AF_INET6 {
			return true
		}
		attrs := m[unix.SizeofIfAddrmsg:]
		b, ok := attrBytes(attrs, unix.IFA_LOCAL)
		if !ok {
			b, ok = attrBytes(attrs, unix.IFA_ADDRESS)
		}
		if a, valid := netip.AddrFromSlice(b); ok && valid {
			fn(int(ifa.Index), a)
		}
		return true
	})
}

// rtextFilterSkipStats asks a link dump to leave out each link's
// statistics (RTEXT_FILTER_SKIP_STATS, Linux 4.19; older kernels ignore it).
const rtextFilterSkipStats = 1 << 3

// linkNames returns every link's name by index. It reads only the names
// from the dump, where netlink.LinkList decodes every attribute of every
// link: with 10,000 tunnels that was 17 % of the daemon's time while it
// created them, and 70 MB of its memory.
func linkNames() (map[int]string, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	names := map[int]string{}
	err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWLINK, func(m []byte) bool {
		if len(m) < unix.SizeofIfInfomsg {
			return true
		}
		ifi := nl.DeserializeIfInfomsg(m)
		if name, ok := attrBytes(m[unix.SizeofIfInfomsg:], unix.IFLA_IFNAME); ok {
			names[int(ifi.Index)] = strings.TrimRight(string(name), "\x00")
		}
		return true
	})
	return names, err
}

// attrBytes finds attribute typ among the route attributes in b and
// returns its value (a slice of b).
func attrBytes(b []byte, typ uint16) ([]byte, bool) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(nl.NativeEndian().Uint16(b[0:2]))
		t := nl.NativeEndian().Uint16(b[2:4])
		if l < unix.SizeofRtAttr || l > len(b) {
			return nil, false
		}
		if t == typ {
			return b[unix.SizeofRtAttr:l], true
		}
		b = b[min(len(b), (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return nil, false
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
