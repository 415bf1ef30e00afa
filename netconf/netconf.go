// Package netconf is gretun's thin layer over netlink
// (github.com/vishvananda/netlink) for what the engine needs to know and
// change about links and routes: up/down, MTU, the MTU of the route toward
// a tunnel's remote, local addresses, the carrier of a TUN device, and link
// change events. It never runs the ip command.
//
// Every function acts in the network namespace of the calling OS thread,
// like the netlink calls beneath it; a caller serving another namespace
// locks its goroutine to a thread switched into it (runtime.LockOSThread).
//
// It does not create or delete links, addresses or routes: the user owns
// those, as with a kernel tunnel.
package netconf

import (
	"fmt"
	"strings"
)

// LinkEvent is one link change as the kernel reports it (RTM_NEWLINK or
// RTM_DELLINK).
type LinkEvent struct {
	Index   int
	Name    string
	MTU     int
	Up      bool // administratively up (IFF_UP)
	Carrier bool // lower layer up (IFF_LOWER_UP); false while Up is false
	Deleted bool // the link is gone
}

// checkName rejects names that are not Linux interface names, so that
// they cannot step outside /proc/sys/net/.../conf.
func checkName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/ \t\n\x00:") {
		return fmt.Errorf("netconf: %q is not a valid interface name", name)
	}
	return nil
}
