package tunnel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/rawsock"
)

// ICMPSource yields ICMP Fragmentation Needed (rawsock.ICMPConn) or ICMPv6
// Packet Too Big (rawsock.ICMP6Conn) reports about outer packets we sent.
type ICMPSource interface {
	ReadTooBig(buf []byte) (rawsock.TooBig, error)
	Close() error
}

// startWatchers starts, once, the goroutines that follow the underlay:
// ICMP Fragmentation Needed for our outer packets (RFC 2003 §5.1.2) and
// link MTU changes. e.mu is held.
func (e *Engine) startWatchers() {
	if e.addrsDirty == nil {
		e.addrsDirty = make(chan struct{}, 1)
	}
	e.addrsChanged() // a tunnel was added: read its device's addresses
	if e.watchCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.watchCancel = cancel
	e.watchAddrs(ctx)
	for _, open := range []func() (ICMPSource, error){e.env.OpenICMP, e.env.OpenICMP6} {
		if open == nil {
			continue
		}
		if src, err := open(); err != nil {
			e.log.Warn("not listening for ICMP too-big reports; path MTU changes will be learnt from send errors only", "err", err)
		} else {
			e.watchers.Add(1)
			go e.readICMP(src)
			context.AfterFunc(ctx, func() { src.Close() })
		}
	}
	if e.env.WatchLinks != nil {
		e.watchers.Add(1)
		go e.watchLinks(ctx)
	}
}

func (e *Engine) stopWatchers() {
	if e.watchCancel != nil {
		e.watchCancel()
		e.watchers.Wait()
	}
}

// readICMP lowers the path MTU of the tunnel whose outer packet a router
// reported as too big.
func (e *Engine) readICMP(src ICMPSource) {
	defer e.watchers.Done()
	buf := make([]byte, 1500)
	for {
		tb, err := src.ReadTooBig(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		sent := 0
		switch {
		case tb.Src.Is4() && len(tb.Quote) >= 4:
			sent = int(tb.Quote[2])<<8 | int(tb.Quote[3]) // total length
		case tb.Src.Is6() && len(tb.Quote) >= header.IPv6HeaderLen:
			sent = header.IPv6HeaderLen + header.IPv6(tb.Quote).PayloadLen()
		}
		e.tunnelsQuoted(&tb, func(t *Tunnel) {
			if p := t.peerTo(tb.Dst); p != nil {
				p.learnPathMTU(tb.MTU, sent)
			}
		})
	}
}

// tunnelsQuoted calls fn for each tunnel that sent the packet tb quotes.
// As the kernel's ipgre_err does, it looks the quoted key up as an input
// key with the addresses turned round: found at once for tunnels that
// send the key they receive. Only while some tunnel has different keys
// does a message (forged, or about a tunnel we do not have) cost a
// comparison with every tunnel.
func (e *Engine) tunnelsQuoted(tb *rawsock.TooBig, fn func(*Tunnel)) {
	k := demuxKey{proto: uint8(tb.Proto), src: tb.Dst, dst: tb.Src}
	if tb.Proto == rawsock.ProtoGRE && tb.GREFlags&header.GREFlagKey != 0 {
		k.key, k.hasKey = tb.Key, true
	}
	found := e.lookup(k)
	if found != nil && found.quotes(tb) {
		fn(found)
	}
	if e.asymmetric.Load() == 0 {
		return
	}
	e.demux.each(func(t *Tunnel) {
		if t != found && t.quotes(tb) {
			fn(t)
		}
	})
}

// quotes reports whether t sent the packet tb quotes (quotesOwnPacket):
// a multipoint tunnel, to one of its neighbours.
func (t *Tunnel) quotes(tb *rawsock.TooBig) bool {
	c := t.cfg.Load()
	if t.nb != nil {
		if t.peerTo(tb.Dst) == nil {
			return false
		}
		to := *c
		to.Remote = tb.Dst
		c = &to
	}
	return quotesOwnPacket(c, tb)
}

// peerTo is the peer at underlay address a: a point-to-point tunnel's
// own, a multipoint tunnel's neighbour (nil when none).
func (t *Tunnel) peerTo(a netip.Addr) *peer {
	if t.nb == nil {
		return t.peer
	}
	return t.nb.table.Load().peers[a]
}

// quotesOwnPacket reports whether the packet an ICMP error quotes is one
// tunnel c sent: its protocol (either of mode any's), from our local address to the remote, and
// for GRE exactly the flags c sends (version 0, no other bits), a protocol
// type c sends (0x6558 only from gretap, which sends IPv4 in its
// keepalives) and c's output key. The kernel's ipgre_err looks the tunnel
// up by the key too; without it one message (forged, or about another
// tunnel) would lower the path MTU of every keyed tunnel sharing the
// endpoints. The quoted key is the one we send: c's okey.
func quotesOwnPacket(c *config.Tunnel, tb *rawsock.TooBig) bool {
	if c.UDP() || !c.SendsProto(uint8(tb.Proto)) || c.Local != tb.Src || c.Remote != tb.Dst {
		return false // a raw socket's ICMP quotes no packet of a UDP tunnel
	}
	if tb.Proto != rawsock.ProtoGRE {
		return true
	}
	switch tb.GREType {
	case header.EtherTypeIPv4, header.EtherTypeKeepalive: // gretap: its keepalives
	case header.EtherTypeIPv6:
		if c.Ethernet() {
			return false
		}
	case header.EtherTypeTEB:
		if !c.Ethernet() {
			return false
		}
	default:
		return false
	}
	return tb.GREFlags == header.GREFlagsFor(c.OCsum, c.HasOKey, c.OSeq) && (!c.HasOKey || tb.Key == c.OKey)
}

// watchLinks follows underlay MTU changes: when a link that is not one of
// our tunnels appears or changes its MTU, every tunnel re-reads the MTU of
// its route to the remote, at most every linkSettle.
func (e *Engine) watchLinks(ctx context.Context) {
	defer e.watchers.Done()
	dirty := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-dirty:
			}
			e.demux.each((*Tunnel).refreshUnderlay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(linkSettle):
			}
		}
	}()
	mtus := map[string]int{}
	for ctx.Err() == nil {
		err := e.env.WatchLinks(ctx, func(ev LinkEvent) {
			if t, ours := e.tunnelNamed(ev.Name); ours {
				if t != nil {
					t.deviceMTU(ev.MTU) // `ip link set dev NAME mtu N`
				}
				return
			}
			if old, seen := mtus[ev.Name]; seen && old == ev.MTU {
				return
			}
			mtus[ev.Name] = ev.MTU
			select {
			case dirty <- struct{}{}:
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			e.log.Warn("link watch ended, restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// linkSettle bounds how often link events make tunnels re-read routes.
const linkSettle = 200 * time.Millisecond

// tunnelNamed reports whether name is (or is becoming) one of our devices,
// and its tunnel once it runs, without taking e.mu (the link watcher must
// not wait for an Add in progress).
func (e *Engine) tunnelNamed(name string) (t *Tunnel, ours bool) {
	e.namesMu.Lock()
	defer e.namesMu.Unlock()
	t, ours = e.names[name]
	return t, ours
}
