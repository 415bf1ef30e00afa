// Package stackdev is a `netstack` tunnel's device: a userspace TCP/IP
// stack (netstack) and what it serves to programs on this host, the
// SOCKS5 proxy (socks5) and the forwarded ports, started and stopped with
// it. The engine sees the stack's packets; this package never does.
package stackdev

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/netstack"
	"github.com/gretun/gretun/socks5"
)

// Device is a stack with its services.
type Device struct {
	*netstack.Stack
	socks *socks5.Server
	g     group
}

// Open starts the stack c describes with the given MTU, and its SOCKS5
// proxy and forwarded ports. A port that cannot be had (in use, no
// permission) fails it with nothing left running.
func Open(c *config.Stack, mtu int, log *slog.Logger) (*Device, error) {
	st, err := netstack.New(c.Addrs, c.DNS, mtu)
	if err != nil {
		return nil, err
	}
	d := &Device{Stack: st}
	if err := d.start(c, log); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Device) start(c *config.Stack, log *slog.Logger) error {
	if c.SOCKS5.IsValid() {
		ln, err := net.Listen("tcp", c.SOCKS5.String())
		if err != nil {
			return fmt.Errorf("socks5: %v", err)
		}
		d.socks = &socks5.Server{Net: d.Stack, User: c.SOCKS5User, Pass: c.SOCKS5Pass, Log: log}
		d.g.wg.Go(func() { d.socks.Serve(ln) })
	}
	for _, f := range c.Forwards {
		if err := d.forward(f, log.With("forward", f.Word())); err != nil {
			return fmt.Errorf("%s: %v", f.Word(), err)
		}
	}
	return nil
}

// forward opens f's listener and serves it.
func (d *Device) forward(f config.Forward, log *slog.Logger) error {
	var dial dialFunc
	if f.Reverse {
		dial = func(ctx context.Context, network string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, network, f.Target)
		}
	} else {
		dial = func(ctx context.Context, network string) (net.Conn, error) {
			return d.Stack.DialContext(ctx, network, f.Target)
		}
	}
	switch {
	case f.Proto == "tcp" && f.Reverse:
		port, _ := strconv.ParseUint(f.Listen[1:], 10, 16)
		ln, err := d.Stack.ListenTCP(uint16(port))
		if err != nil {
			return err
		}
		d.g.goClose(ln, func() { d.serveTCP(ln, dial, log) })
	case f.Proto == "tcp":
		ln, err := net.Listen("tcp", f.Listen)
		if err != nil {
			return err
		}
		d.g.goClose(ln, func() { d.serveTCP(ln, dial, log) })
	case f.Reverse:
		port, _ := strconv.ParseUint(f.Listen[1:], 10, 16)
		pc, err := d.Stack.ListenUDP(uint16(port))
		if err != nil {
			return err
		}
		d.g.goClose(pc, func() { d.serveUDP(pc, dial, log) })
	default:
		pc, err := net.ListenPacket("udp", f.Listen)
		if err != nil {
			return err
		}
		d.g.goClose(pc, func() { d.serveUDP(pc, dial, log) })
	}
	return nil
}

// Close stops the services, then the stack.
func (d *Device) Close() error {
	if d.socks != nil {
		d.socks.Close()
	}
	d.g.closeAll()
	return d.Stack.Close()
}

// Addrs are the stack's addresses.
func (d *Device) Addrs() []netip.Addr { return d.Stack.Addrs() }
