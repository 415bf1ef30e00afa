package stackdev

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gretun/gretun/socks5"
)

// udpIdle ends a forwarded UDP flow that has carried nothing this long.
const udpIdle = 2 * time.Minute

// dialTimeout bounds the dial of a forwarded connection.
const dialTimeout = 20 * time.Second

// dialFunc connects to a forward's target, in the tunnel or on this host.
type dialFunc func(ctx context.Context, network string) (net.Conn, error)

// serveTCP accepts on ln and relays each connection to a new one to the
// target, until ln is closed.
func (d *Device) serveTCP(ln net.Listener, dial dialFunc, log *slog.Logger) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !d.g.isClosed() {
				log.Warn("forward: accept", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		d.g.goClose(c, func() {
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			out, err := dial(ctx, "tcp")
			cancel()
			if err != nil {
				log.Warn("forward: cannot reach the target", "from", c.RemoteAddr().String(), "err", err)
				return
			}
			if !d.g.add(out) {
				return
			}
			defer d.g.remove(out)
			defer out.Close()
			socks5.Relay(c, out)
		})
	}
}

// serveUDP relays datagrams from each source on pc to the target over a
// socket of its own (a flow), and the target's answers back to the
// source, until pc is closed; a flow idle for udpIdle ends.
func (d *Device) serveUDP(pc net.PacketConn, dial dialFunc, log *slog.Logger) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !d.g.isClosed() {
				log.Warn("forward: udp read", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		key := from.String()
		mu.Lock()
		out := flows[key]
		mu.Unlock()
		if out == nil {
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			out, err = dial(ctx, "udp")
			cancel()
			if err != nil {
				log.Warn("forward: cannot reach the target", "from", key, "err", err)
				continue
			}
			mu.Lock()
			flows[key] = out
			mu.Unlock()
			out.SetReadDeadline(time.Now().Add(udpIdle))
			d.g.goClose(out, func() {
				defer func() {
					mu.Lock()
					delete(flows, key)
					mu.Unlock()
				}()
				back := make([]byte, 65535)
				for {
					n, err := out.Read(back)
					if err != nil {
						return
					}
					out.SetReadDeadline(time.Now().Add(udpIdle))
					pc.WriteTo(back[:n], from)
				}
			})
		}
		out.SetReadDeadline(time.Now().Add(udpIdle))
		out.Write(buf[:n])
	}
}
