// Package netstack is a userspace TCP/IP stack (gVisor's) as a tunnel
// device: the engine reads the IP packets the stack sends and writes the
// packets the tunnel receives, and programs on this host reach the far
// side through Dial and Listen instead of through a kernel network device.
// No TUN device and no privilege is needed.
//
// It follows wireguard's tun/netstack, which it does not use: that device
// keeps its gVisor stack to itself, so its MTU cannot follow the tunnel's
// path MTU (SetMTU here) and its addresses lose their prefixes.
//
// It does not route between its addresses and the host, answer on the
// host's behalf or serve anything by itself: the SOCKS5 proxy and the
// forwarded ports (socks5, Forward) are built on Dial and Listen.
package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// nic is the stack's one network interface: the tunnel.
const nic tcpip.NICID = 1

// batchSize is how many packets one Read hands the engine at most.
const batchSize = 64

// Stack is a userspace TCP/IP stack whose one interface is a tunnel. It is
// a wireguard tun.Device (Read, Write, MTU, BatchSize, Close) with no file
// and no kernel name.
type Stack struct {
	ep       *channel.Endpoint
	s        *stack.Stack
	prefixes []netip.Prefix
	dns      netip.Addr

	ctx    context.Context // done once closed: ends a blocked Read
	cancel context.CancelFunc
	events chan tun.Event
	once   sync.Once
}

// New returns a stack with the addresses prefixes (at most one IPv4 and
// one IPv6), routing everything else into the tunnel, with the given MTU.
// Names are resolved by the DNS server dns, inside the tunnel; without one
// only addresses can be dialled.
func New(prefixes []netip.Prefix, dns netip.Addr, mtu int) (*Stack, error) {
	if len(prefixes) == 0 {
		return nil, errors.New("netstack: no address")
	}
	st := &Stack{
		ep: channel.New(1024, uint32(mtu), ""),
		s: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
			HandleLocal:        true,
		}),
		prefixes: prefixes,
		dns:      dns,
		events:   make(chan tun.Event, 1),
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &moderate} {
		if err := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			st.Close()
			return nil, fmt.Errorf("netstack: %v", err)
		}
	}
	if err := st.s.CreateNIC(nic, st.ep); err != nil {
		st.Close()
		return nil, fmt.Errorf("netstack: %v", err)
	}
	var has4, has6 bool
	for _, p := range prefixes {
		proto, any := ipv4.ProtocolNumber, header.IPv4EmptySubnet
		if p.Addr().Is6() {
			proto, any = ipv6.ProtocolNumber, header.IPv6EmptySubnet
		}
		if p.Addr().Is4() && has4 || p.Addr().Is6() && has6 {
			st.Close()
			return nil, fmt.Errorf("netstack: more than one %s address", familyOf(p.Addr()))
		}
		has4, has6 = has4 || p.Addr().Is4(), has6 || p.Addr().Is6()
		a := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{
			Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()}}
		if err := st.s.AddProtocolAddress(nic, a, stack.AddressProperties{}); err != nil {
			st.Close()
			return nil, fmt.Errorf("netstack: address %s: %v", p, err)
		}
		// The tunnel is point to point: everything goes into it.
		st.s.AddRoute(tcpip.Route{Destination: any, NIC: nic})
	}
	st.events <- tun.EventUp
	return st, nil
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// Read blocks until the stack sends a packet, then hands it and whatever
// else it has queued, up to len(bufs), each at offset.
func (st *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := st.ep.ReadContext(st.ctx)
	n := 0
	for pkt != nil {
		v := pkt.ToView()
		pkt.DecRef()
		sizes[n], _ = v.Read(bufs[n][offset:])
		v.Release()
		if n++; n == len(bufs) {
			break
		}
		pkt = st.ep.Read()
	}
	if n == 0 {
		return 0, os.ErrClosed
	}
	return n, nil
}

// Write hands the stack the packets the tunnel received, each at offset.
func (st *Stack) Write(bufs [][]byte, offset int) (int, error) {
	if st.ctx.Err() != nil {
		return 0, os.ErrClosed
	}
	for _, b := range bufs {
		p := b[offset:]
		var proto tcpip.NetworkProtocolNumber
		switch {
		case len(p) == 0:
			continue
		case p[0]>>4 == 4:
			proto = ipv4.ProtocolNumber
		case p[0]>>4 == 6:
			proto = ipv6.ProtocolNumber
		default:
			continue // the engine passes only IP; the stack would drop it anyway
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		st.ep.InjectInbound(proto, pkt)
		pkt.DecRef()
	}
	return len(bufs), nil
}

// SetMTU changes the stack's MTU: new connections take their MSS from it,
// and no packet larger leaves the stack.
func (st *Stack) SetMTU(mtu int) error {
	if err := st.s.SetNICMTU(nic, uint32(mtu)); err != nil {
		return fmt.Errorf("netstack: %v", err)
	}
	return nil
}

func (st *Stack) MTU() (int, error)        { return int(st.ep.MTU()), nil }
func (st *Stack) Name() (string, error)    { return "netstack", nil }
func (st *Stack) File() *os.File           { return nil }
func (st *Stack) Events() <-chan tun.Event { return st.events }
func (st *Stack) BatchSize() int           { return batchSize }

// Addrs are the stack's addresses.
func (st *Stack) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(st.prefixes))
	for i, p := range st.prefixes {
		out[i] = p.Addr()
	}
	return out
}

// Close ends every connection and a blocked Read.
func (st *Stack) Close() error {
	st.once.Do(func() {
		st.cancel()
		st.s.Close()
		st.ep.Close()
		st.s.Wait()
		close(st.events)
	})
	return nil
}

// has reports whether the stack has an address of a's family.
func (st *Stack) has(a netip.Addr) bool {
	for _, p := range st.prefixes {
		if p.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	fa := tcpip.FullAddress{NIC: nic, Port: ap.Port()}
	if ap.Addr().IsValid() && !ap.Addr().IsUnspecified() {
		fa.Addr = tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice())
	}
	if ap.Addr().Unmap().Is4() {
		return fa, ipv4.ProtocolNumber
	}
	return fa, ipv6.ProtocolNumber
}

// Resolve returns an address of host (a name or an address) the stack can
// reach, looking names up through its DNS server inside the tunnel.
func (st *Stack) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	if !st.dns.IsValid() {
		return netip.Addr{}, &net.DNSError{Err: "no dns server for the tunnel", Name: host, IsNotFound: true}
	}
	addrs, err := st.lookup(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if st.has(a.Unmap()) {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, &net.DNSError{Err: "no address of a family the stack has", Name: host, IsNotFound: true}
}

// dialDNS is the way to the tunnel's DNS server, inside the tunnel.
func (st *Stack) dialDNS(ctx context.Context, network, _ string) (net.Conn, error) {
	return st.DialContext(ctx, network, netip.AddrPortFrom(st.dns, 53).String())
}

// DialContext connects to address (host:port, the host a name or an
// address) inside the tunnel over "tcp" or "udp" (tcp4, udp6 … too).
// A refused, unreachable or timed-out connection returns the errno the
// kernel's would (syscall.ECONNREFUSED …), wrapped in a *net.OpError.
func (st *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", port)
	}
	a, err := st.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	ap := netip.AddrPortFrom(a, uint16(p))
	switch network {
	case "tcp", "tcp4", "tcp6":
		return st.dialTCP(ctx, ap)
	case "udp", "udp4", "udp6":
		fa, proto := fullAddr(ap)
		c, err := gonet.DialUDP(st.s, nil, &fa, proto)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("netstack: unknown network %q", network)
}

// dialTCP is gonet.DialContextTCP with the stack's error kept as an errno.
func (st *Stack) dialTCP(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	fa, proto := fullAddr(ap)
	var wq waiter.Queue
	ep, terr := st.s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, opError("dial", ap, terr)
	}
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(fa)
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: ctx.Err()}
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, opError("dial", ap, terr)
	}
	return gonet.NewTCPConn(&wq, ep), nil
}

// opError names a stack error by the errno the kernel would return.
func opError(op string, ap netip.AddrPort, terr tcpip.Error) error {
	var err error = errors.New(terr.String())
	switch terr.(type) {
	case *tcpip.ErrConnectionRefused:
		err = syscall.ECONNREFUSED
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		err = syscall.EHOSTUNREACH
	case *tcpip.ErrNetworkUnreachable:
		err = syscall.ENETUNREACH
	case *tcpip.ErrTimeout:
		err = syscall.ETIMEDOUT
	case *tcpip.ErrConnectionReset:
		err = syscall.ECONNRESET
	case *tcpip.ErrPortInUse, *tcpip.ErrDuplicateAddress:
		err = syscall.EADDRINUSE
	}
	return &net.OpError{Op: op, Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}

// ListenTCP listens inside the tunnel on port of the stack's IPv4
// address (its IPv6 one when it has no IPv4).
func (st *Stack) ListenTCP(port uint16) (net.Listener, error) {
	fa, proto := st.anyAddr(port)
	var wq waiter.Queue
	ep, terr := st.s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, opError("listen", netip.AddrPortFrom(netip.Addr{}, port), terr)
	}
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		return nil, opError("listen", netip.AddrPortFrom(netip.Addr{}, port), terr)
	}
	if terr := ep.Listen(4096); terr != nil {
		ep.Close()
		return nil, opError("listen", netip.AddrPortFrom(netip.Addr{}, port), terr)
	}
	return gonet.NewTCPListener(st.s, &wq, ep), nil
}

// ListenUDP opens a UDP socket inside the tunnel on port (0: any free
// one) of the stack's IPv4 address (else IPv6), unconnected: it sends to and
// receives from anyone (WriteTo, ReadFrom).
func (st *Stack) ListenUDP(port uint16) (net.PacketConn, error) {
	fa, proto := st.anyAddr(port)
	c, err := gonet.DialUDP(st.s, &fa, nil, proto)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// anyAddr is port on the stack's IPv4 address, else its IPv6 one.
func (st *Stack) anyAddr(port uint16) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := tcpip.NetworkProtocolNumber(ipv4.ProtocolNumber)
	if !st.has(netip.IPv4Unspecified()) {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nic, Port: port}, proto
}
