package tunnel

import (
	"context"
	"net/netip"
	"time"
)

// watchAddrs keeps each tunnel's device address (Tunnel.addr6, the
// source of some ICMPv6 errors) fresh, for devices whose addresses the
// host holds (a userspace stack's are its own, set once in newTunnel): all tunnels' addresses are read in
// one go when the host's addresses change or a tunnel starts, at most
// every linkSettle, and never per packet. e.mu is held.
func (e *Engine) watchAddrs(ctx context.Context) {
	if e.env.WatchAddrs == nil || e.env.DeviceAddrs == nil {
		return
	}
	e.watchers.Add(2)
	go func() {
		defer e.watchers.Done()
		for ctx.Err() == nil {
			if err := e.env.WatchAddrs(ctx, e.addrsChanged); err != nil && ctx.Err() == nil {
				e.log.Warn("address watch ended, restarting", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	go func() {
		defer e.watchers.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.addrsDirty:
			}
			if all, err := e.env.DeviceAddrs(); err != nil {
				e.log.Warn("cannot read the devices' addresses", "err", err)
			} else {
				e.demux.each(func(t *Tunnel) {
					if t.dev.Addrs() == nil {
						t.setAddrs(all[t.name])
					}
				})
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(linkSettle):
			}
		}
	}()
}

// addrsChanged asks for the devices' addresses to be read again.
func (e *Engine) addrsChanged() {
	select {
	case e.addrsDirty <- struct{}{}:
	default:
	}
}

// setAddrs remembers the device address icmpSource speaks for: a global
// one, else a link-local one, which reaches senders on this host.
func (t *Tunnel) setAddrs(addrs []netip.Addr) {
	var best *netip.Addr
	for _, a := range addrs {
		if a.Is6() && !a.Is4In6() && !a.IsMulticast() && !a.IsLoopback() && (best == nil || best.IsLinkLocalUnicast() && !a.IsLinkLocalUnicast()) {
			best = &a
		}
	}
	t.addr6.Store(best)
}
