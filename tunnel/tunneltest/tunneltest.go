// Package tunneltest has in-memory fakes of the engine's two I/O seams — a
// TUN device and an underlay raw socket — so the whole data path runs in
// tests and benchmarks without privileges, in the manner of wireguard-go's
// tun/tuntest and conn/bindtest.
package tunneltest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/gretun/gretun/tunnel"
)

var _ tunnel.Device = (*Device)(nil)

// Device is a fake TUN device (a tunnel.Device). Packets put with Inject
// are read by the engine; packets the engine writes arrive on Written (or
// are only counted when Discard is set). Like a TUN with offloads it asks
// for 10 bytes of headroom, so the engine's buffers are laid out as in
// production.
type Device struct {
	name  string
	batch int
	mtu   atomic.Int64
	// Host, when set, records the carrier the engine sets (Host.CarrierOf).
	Host    *Host
	in      chan []byte
	Written chan []byte
	Discard bool
	// OwnAddrs are what Addrs returns, set before the engine gets the device.
	OwnAddrs []netip.Addr

	WrittenPackets atomic.Uint64
	// GSO, set before the engine gets the device, has it take TCP
	// super-packets as a TUN does (WriteGSO), each arriving on Super with
	// its 10-byte virtio-net header in front.
	GSO       bool
	Super     chan []byte
	ethernet  bool // a TAP: Ethernet frames, no headroom
	events    chan tun.Event
	closed    chan struct{}
	closeOnce sync.Once
	refuse    atomic.Pointer[error]
}

// RefuseWith has every later Write refuse the whole write with err, as
// the kernel does when the device is down; nil takes packets again.
func (d *Device) RefuseWith(err error) { storeRefusal(&d.refuse, err) }

// NewDevice returns a fake device reading up to batch packets a call.
func NewDevice(name string, mtu, batch int) *Device {
	d := &Device{name: name, batch: batch, in: make(chan []byte, 1024),
		Written: make(chan []byte, 1024), Super: make(chan []byte, 1024), events: make(chan tun.Event, 1), closed: make(chan struct{})}
	d.mtu.Store(int64(mtu))
	return d
}

// NewTAP returns a fake TAP device (a gretap tunnel's): Ethernet frames,
// with no room asked for in front of them.
func NewTAP(name string, mtu, batch int) *Device {
	d := NewDevice(name, mtu, batch)
	d.ethernet = true
	return d
}

// Inject queues an inner packet for the engine to read.
func (d *Device) Inject(pkt []byte) { d.in <- pkt }

func (d *Device) File() *os.File { return nil }

func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	case p := <-d.in:
		sizes[0] = copy(bufs[0][offset:], p)
	}
	n := 1
	for n < len(bufs) && n < d.batch {
		select {
		case p := <-d.in:
			sizes[n] = copy(bufs[n][offset:], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	default:
	}
	if err := d.refuse.Load(); err != nil {
		return 0, *err
	}
	d.WrittenPackets.Add(uint64(len(bufs)))
	if d.Discard {
		return len(bufs), nil
	}
	for _, b := range bufs {
		d.Written <- append([]byte(nil), b[offset:]...)
	}
	return len(bufs), nil
}

// WriteGSO takes packets whose virtio-net header the engine wrote in
// front of offset (tundev.Device.WriteGSO), when GSO is set.
func (d *Device) WriteGSO(bufs [][]byte, offset int) (int, error) {
	if !d.CanWriteGSO() {
		return 0, errors.New("tunneltest: no GSO")
	}
	n := 0
	for _, b := range bufs {
		d.Super <- append([]byte(nil), b[offset-10:]...)
		n += len(b) - offset
	}
	return n, nil
}

// CanWriteGSO reports whether WriteGSO takes super-packets.
func (d *Device) CanWriteGSO() bool { return d.GSO && !d.ethernet }

func (d *Device) MTU() (int, error)        { return int(d.mtu.Load()), nil }
func (d *Device) Name() (string, error)    { return d.name, nil }
func (d *Device) Events() <-chan tun.Event { return d.events }
func (d *Device) BatchSize() int           { return d.batch }

func (d *Device) Payload() tunnel.Payload {
	if d.ethernet {
		return tunnel.PayloadEthernet
	}
	return tunnel.PayloadIP
}

func (d *Device) Headroom() int {
	if d.ethernet {
		return 0
	}
	return 10
}
func (d *Device) Up(mtu int) error { return d.SetMTU(mtu) }

// Addrs returns OwnAddrs: nil, as a TUN, unless a test gives the device
// addresses of its own, as a userspace stack has.
func (d *Device) Addrs() []netip.Addr { return d.OwnAddrs }

func (d *Device) SetMTU(mtu int) error {
	d.mtu.Store(int64(mtu))
	return nil
}

func (d *Device) SetCarrier(up bool) error {
	if d.Host != nil {
		d.Host.setCarrier(d.name, up)
	}
	return nil
}

func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		close(d.events)
	})
	return nil
}

// Wire connects the underlay sockets of several fake hosts: a packet
// written on any of them is delivered to the socket of the host that owns
// its destination address and protocol.
type Wire struct {
	mu    sync.Mutex
	socks map[sockKey]*Socket
}

type sockKey struct {
	addr  netip.Addr
	proto int
	port  uint16 // UDP sockets only
}

// NewWire returns an empty wire.
func NewWire() *Wire { return &Wire{socks: map[sockKey]*Socket{}} }

// Open returns the socket for proto of the host with address addr.
func (w *Wire) Open(addr netip.Addr, proto int) *Socket {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &Socket{w: w, in: make(chan []byte, 4096), closed: make(chan struct{})}
	w.socks[sockKey{addr, proto, 0}] = s
	return s
}

// OpenUDP returns the UDP socket bound to local, which takes and delivers
// whole IPv4/UDP packets as udpsock does (wrap it with tunnel.UDPIPv4). A
// port already bound fails with syscall.EADDRINUSE.
func (w *Wire) OpenUDP(local netip.AddrPort) (*Socket, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sockKey{local.Addr(), 17, local.Port()}
	if old := w.socks[k]; old != nil && !old.isClosed() {
		return nil, syscall.EADDRINUSE
	}
	s := &Socket{w: w, in: make(chan []byte, 4096), closed: make(chan struct{})}
	w.socks[k] = s
	return s, nil
}

// Socket is a fake raw IPv4 or IPv6 socket on a Wire (a tunnel.RawConn:
// wrap it with tunnel.RawIPv4 or RawIPv6 to make it an underlay).
type Socket struct {
	w         *Wire
	in        chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	Dropped   atomic.Uint64 // no receiver, or its queue was full
	refuse    atomic.Pointer[error]
	// Via and Mark are the device index and the mark the last
	// WriteBatchOut sent with (a tunnel's `dev` and `fwmark`); the wire
	// has no devices nor routes, so it only records them.
	Via  atomic.Int64
	Mark atomic.Uint32
}

// WriteBatchOut is WriteBatch out of the device with index ifindex and
// marked, as rawsock's and udpsock's.
func (s *Socket) WriteBatchOut(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	s.Via.Store(int64(ifindex))
	s.Mark.Store(mark)
	return s.WriteBatch(pkts)
}

// RefuseWith has every later WriteBatch refuse its first packet with err,
// as the kernel refuses a send; nil takes packets again.
func (s *Socket) RefuseWith(err error) { storeRefusal(&s.refuse, err) }

func storeRefusal(p *atomic.Pointer[error], err error) {
	if err == nil {
		p.Store(nil)
		return
	}
	p.Store(&err)
}

// Socket returns the socket Open last made for proto at addr, or nil.
func (w *Wire) Socket(addr netip.Addr, proto int) *Socket {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.socks[sockKey{addr, proto, 0}]
}

func (s *Socket) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	select {
	case <-s.closed:
		return 0, net.ErrClosed
	case p := <-s.in:
		sizes[0] = copy(bufs[0], p)
	}
	n := 1
	for n < len(bufs) {
		select {
		case p := <-s.in:
			sizes[n] = copy(bufs[n], p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (s *Socket) WriteBatch(pkts [][]byte) (int, error) {
	select {
	case <-s.closed:
		return 0, net.ErrClosed
	default:
	}
	if err := s.refuse.Load(); err != nil && len(pkts) > 0 {
		return 0, *err
	}
	for _, p := range pkts {
		dst, proto, at, ok := route(p)
		if !ok {
			continue
		}
		k := sockKey{dst, proto, 0}
		if proto == 17 && len(p) >= at+8 {
			k.port = binary.BigEndian.Uint16(p[at+2:])
		}
		s.w.mu.Lock()
		to := s.w.socks[k]
		s.w.mu.Unlock()
		if to == nil {
			s.Dropped.Add(1)
			continue
		}
		select {
		case to.in <- append([]byte(nil), p...):
		default:
			s.Dropped.Add(1)
		}
	}
	return len(pkts), nil
}

func (s *Socket) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// route reads a packet's destination, tunnel protocol and where its
// payload starts: an IPv4 packet's, or an IPv6 packet's after a
// destination options header (the encapsulation limit), which the fake
// delivers as sent.
func route(p []byte) (netip.Addr, int, int, bool) {
	if len(p) >= 40 && p[0]>>4 == 6 {
		proto, at := int(p[6]), 40
		if proto == 60 && len(p) >= 48 {
			proto, at = int(p[40]), 48
		}
		return netip.AddrFrom16([16]byte(p[24:40])), proto, at, true
	}
	if len(p) < 20 {
		return netip.Addr{}, 0, 0, false
	}
	return netip.AddrFrom4([4]byte(p[16:20])), int(p[9]), 20, true
}

func (s *Socket) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Clock is a clock tests step by hand (tunnel.Env.Now), safe for use from
// the engine's goroutines.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
