package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
	"github.com/gretun/gretun/udpsock"
)

// TestEngineFOUCarriesPackets: GRE and IPIP inside UDP between two engines
// over fake UDP sockets, with options, and with each side receiving on
// another port than it sends to (fou-port).
func TestEngineFOUCarriesPackets(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"mode gre encap fou", "mode gre encap fou"},
		{"mode ipip encap fou encap-dport 5555", "mode ipip encap fou encap-dport 5555"},
		{"mode gre key 7 csum seq encap fou noencap-csum", "mode gre key 7 csum seq encap fou"},
		{"mode gre encap fou encap-dport 6000 fou-port 7000", "mode gre encap fou encap-dport 7000 fou-port 6000"},
	} {
		t.Run(c.a, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			mustAdd(t, a, "t0", c.a+" remote 192.0.2.2 local 192.0.2.1")
			mustAdd(t, b, "t0", c.b+" remote 192.0.2.1 local 192.0.2.2")
			for i := range 20 {
				pkt := udp4("198.51.100.1", "203.0.113.1", 100+i*50)
				a.dev("t0").Inject(pkt)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
					t.Fatalf("packet %d changed in transit:\n got %x\nwant %x", i, got, pkt)
				}
				pkt = udp4("203.0.113.1", "198.51.100.1", 60+i)
				b.dev("t0").Inject(pkt)
				if got := receive(t, a.dev("t0")); !bytes.Equal(got, pkt) {
					t.Fatalf("reply %d changed in transit", i)
				}
			}
			s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == 20 })
			if s.RxErrors != 0 {
				t.Errorf("B counters: %+v", s)
			}
		})
	}
}

// TestEngineFOUBesidePlain: one engine serves a plain GRE tunnel and a
// GRE-in-UDP tunnel with the same endpoints and key, and GRE-in-UDP
// tunnels on two ports: each packet reaches the tunnel of its port.
func TestEngineFOUBesidePlain(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	for _, s := range []struct {
		side   *side
		remote string
	}{{a, "192.0.2.2 local 192.0.2.1"}, {b, "192.0.2.1 local 192.0.2.2"}} {
		mustAdd(t, s.side, "plain", "mode gre key 1 remote "+s.remote)
		mustAdd(t, s.side, "fou", "mode gre key 1 encap fou remote "+s.remote)
		mustAdd(t, s.side, "fou2", "mode gre key 1 encap fou encap-dport 5000 remote "+s.remote)
	}
	for _, name := range []string{"plain", "fou", "fou2", "fou", "plain"} {
		pkt := udp4("198.51.100.1", "203.0.113.1", len(name))
		a.dev(name).Inject(pkt)
		if got := receive(t, b.dev(name)); !bytes.Equal(got, pkt) {
			t.Fatalf("%s: packet changed in transit", name)
		}
	}
	for name, want := range map[string]uint64{"plain": 2, "fou": 2, "fou2": 1} {
		if s := waitStats(t, b, name, func(s tunnel.Stats) bool { return s.RxPackets == want }); s.RxPackets != want {
			t.Errorf("%s received %d packets, want %d", name, s.RxPackets, want)
		}
	}
	st, _ := b.e.Show("fou")
	if st[0].MTU != 1500-20-8-8 {
		t.Errorf("GRE-in-UDP with a key: MTU %d, want 1464 (8 bytes of UDP more than GRE)", st[0].MTU)
	}
}

// TestEngineFOUKeepalive: keepalives on A only, inside UDP; B reflects
// them back into UDP and A's line comes up and stays so.
func TestEngineFOUKeepalive(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 5 icsum encap fou remote 192.0.2.2 local 192.0.2.1 keepalive 50ms 5")
	mustAdd(t, b, "t0", "mode gre key 5 encap fou remote 192.0.2.1 local 192.0.2.2")
	waitFor(t, "5 keepalive replies", func() bool {
		st, _ := a.e.Show("t0")
		ka := st[0].Keepalive
		return ka != nil && ka.Received >= 5
	})
	if s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.Reflected >= 5 }); s.Reflected < 5 || s.RxPackets != 0 {
		t.Errorf("B reflected %d probes and gave %d packets to its device; want >= 5 and 0", s.Reflected, s.RxPackets)
	}
}

// TestEngineFOUKeepaliveIPv6: keepalives on an ip6gre tunnel inside UDP,
// on A only, with Linux's default encapsulation limit: the probe's inner
// packet is IPv6/UDP to A's port with a valid checksum; B reflects it
// back into UDP (not to its device) and A's line comes up.
func TestEngineFOUKeepaliveIPv6(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addr6A, 8), newSide(t, w, addr6B, 8)
	mustAdd(t, b, "t0", "mode ip6gre key 5 encap fou encap-dport 6000 fou-port 4754 remote 2001:db8::1 local 2001:db8::2")
	capB, err := b.e.Capture("t0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer capB.Close()
	mustAdd(t, a, "t0", "mode ip6gre key 5 icsum encap fou fou-port 6000 remote 2001:db8::2 local 2001:db8::1 keepalive 50ms 5")
	// What B sends back is the probe's inner packet: IPv6/UDP from B to
	// A's port 6000, with a UDP checksum that verifies.
	for p := range capB.Packets() {
		if !p.Out {
			capB.Release(p)
			continue
		}
		ip := header.IPv6(p.Data)
		u := header.UDP(p.Data[header.IPv6HeaderLen:])
		if ip.NextHeader() != header.ProtoUDP || ip.DstAddr() != addr6A || u.DstPort() != 6000 || u.Checksum() == 0 ||
			header.Fold(header.Sum(u[:u.Length()], header.PseudoSum(ip.Addrs(), header.ProtoUDP, u.Length()))) != 0 {
			t.Errorf("B reflected %x, want IPv6/UDP to [%s]:6000 with a valid checksum", p.Data, addr6A)
		}
		capB.Release(p)
		break
	}
	waitFor(t, "5 keepalive replies", func() bool {
		st, _ := a.e.Show("t0")
		ka := st[0].Keepalive
		return ka != nil && ka.Received >= 5 && ka.State == "up"
	})
	if s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.Reflected >= 5 }); s.Reflected < 5 || s.RxPackets != 0 {
		t.Errorf("B reflected %d probes and gave %d packets to its device; want >= 5 and 0", s.Reflected, s.RxPackets)
	}
	if st, _ := a.e.Show("t0"); st[0].Keepalive.Rejected != 0 {
		t.Errorf("A rejected replies: %+v", st[0].Keepalive)
	}
}

// TestEngineFOUPortInUse: a UDP port bound by another protocol's tunnel
// is refused in one line, and nothing is created.
func TestEngineFOUPortInUse(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "gre", "mode gre encap fou encap-dport 5555 remote 192.0.2.2 local 192.0.2.1")
	c, err := config.Parse("ipip", strings.Fields("mode ipip encap fou encap-dport 5555 remote 192.0.2.3 local 192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), "UDP port 5555 on 192.0.2.1 is already in use") {
		t.Errorf("IPIP on GRE's port: %v", err)
	}
	if names := a.e.Names(); len(names) != 1 {
		t.Errorf("tunnels after a refused add: %v", names)
	}
}

// recConn records the packets written to it, failing the one at failAt.
type recConn struct {
	got    [][]byte
	failAt int
}

func (r *recConn) ReadBatch([][]byte, []int) (int, error) { return 0, nil }
func (r *recConn) Close() error                           { return nil }
func (r *recConn) WriteBatch(pkts [][]byte) (int, error) {
	for i, p := range pkts {
		if len(r.got) == r.failAt {
			r.failAt = -1
			return i, syscall.ENOBUFS
		}
		r.got = append(r.got, p)
	}
	return len(pkts), nil
}

// fouPacket is an IPv4/UDP packet from sport to 4754.
func fouPacket(sport uint16) []byte {
	p := make([]byte, 40)
	p[0], p[9] = 0x45, 17
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], 4754)
	return p
}

// TestUDPUnderlayPool: packets from the receive port leave from its
// socket, those with per-flow ports from the pool socket of their port,
// runs of one socket in one call, and an error keeps the contract (the
// index of the packet that failed, counted across the runs).
func TestUDPUnderlayPool(t *testing.T) {
	main, p0, p1 := &recConn{failAt: -1}, &recConn{failAt: -1}, &recConn{failAt: 1}
	u := tunnel.UDPIPv4(main, 4754, []tunnel.RawConn{p0, p1})
	pkts := [][]byte{fouPacket(4754), fouPacket(50000), fouPacket(50000), fouPacket(50001), fouPacket(50001), fouPacket(4754)}
	n, err := u.WriteBatch(pkts, netip.AddrPort{})
	if n != 4 || !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("WriteBatch = %d, %v; want 4 (the second packet of 50001), ENOBUFS", n, err)
	}
	if n, err := u.WriteBatch(pkts[5:], netip.AddrPort{}); n != 1 || err != nil {
		t.Fatalf("WriteBatch of the rest = %d, %v", n, err)
	}
	if len(main.got) != 2 || len(p0.got) != 2 || len(p1.got) != 1 {
		t.Errorf("main sent %d, pool[0] %d, pool[1] %d; want 2, 2, 1", len(main.got), len(p0.got), len(p1.got))
	}
}

// TestEngineFOUHostile: thousands of random datagrams on the port, from a
// stranger and from the peer's own address, are dropped and counted:
// nothing reaches the device, nothing is sent to anyone.
func TestEngineFOUHostile(t *testing.T) {
	w := tunneltest.NewWire()
	b := newSide(t, w, addrB, 8)
	mustAdd(t, b, "t0", "mode gre key 1 encap fou remote 192.0.2.1 local 192.0.2.2")
	stranger := w.Open(netip.MustParseAddr("192.0.2.66"), 17)
	peer := w.Open(addrA, 17) // receives whatever B sent to 192.0.2.1 over UDP
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 4000
	for i := range n {
		src := [4]byte{192, 0, 2, 66}
		if i%2 == 1 {
			src = addrA.As4()
		}
		p := make([]byte, 28+rng.IntN(200))
		for j := 28; j < len(p); j++ {
			p[j] = byte(rng.Uint32())
		}
		if i%4 < 2 && len(p) >= 32 {
			binary.BigEndian.PutUint32(p[28:], 0x20000800|uint32(rng.IntN(2))<<31) // GRE with a key, maybe C
		}
		p[0], p[8], p[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		copy(p[12:], src[:])
		copy(p[16:], []byte{192, 0, 2, 2})
		binary.BigEndian.PutUint16(p[22:], 4754)
		binary.BigEndian.PutUint16(p[24:], uint16(len(p)-20))
		if _, err := stranger.WriteBatch([][]byte{p}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every datagram counted", func() bool {
		st, _ := b.e.Show("t0")
		u := b.e.Unmatched()
		var dropped uint64
		for _, d := range u.Drops {
			dropped += d
		}
		for _, d := range st[0].Stats.Drops {
			dropped += d
		}
		return dropped+stranger.Dropped.Load() >= n
	})
	if st, _ := b.e.Show("t0"); st[0].Stats.RxPackets != 0 {
		t.Errorf("%d random datagrams reached the device", st[0].Stats.RxPackets)
	}
	select {
	case p := <-b.dev("t0").Written:
		t.Errorf("written to the device: % x", p)
	default:
	}
	bufs, sizes := [][]byte{make([]byte, 2000)}, []int{0}
	done := make(chan struct{})
	go func() {
		if n, _ := peer.ReadBatch(bufs, sizes); n > 0 {
			t.Errorf("B sent % x", bufs[0][:sizes[0]])
		}
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	peer.Close()
	<-done
}

// reportingSock is a fake UDP socket whose error reports the test makes.
type reportingSock struct {
	*tunneltest.Socket
	report func(udpsock.Error)
}

func (r *reportingSock) OnError(fn func(udpsock.Error)) { r.report = fn }

// TestEngineFOUErrors: an error report about a packet a UDP tunnel sent
// reaches that tunnel only (its port, remote and key; not a plain tunnel
// with the same endpoints and key, not another key): Fragmentation Needed
// lowers its path MTU, Port Unreachable is counted.
func TestEngineFOUErrors(t *testing.T) {
	w := tunneltest.NewWire()
	socks := map[uint16]*reportingSock{}
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		open := env.OpenUnderlay
		env.OpenUnderlay = func(k tunnel.UnderlayKey) (tunnel.Underlay, error) {
			if !k.UDP() {
				return open(k)
			}
			c, err := w.OpenUDP(netip.AddrPortFrom(k.Local, k.Port))
			if err != nil {
				return nil, err
			}
			socks[k.Port] = &reportingSock{Socket: c}
			return tunnel.UDPIPv4(socks[k.Port], k.Port, nil), nil
		}
	})
	for name, words := range map[string]string{
		"plain": "mode gre key 1", "k1": "mode gre key 1 encap fou", "k2": "mode gre key 2 encap fou",
		"other": "mode gre key 1 encap fou encap-dport 5000", "ipip": "mode ipip encap fou encap-dport 5555",
	} {
		mustAdd(t, a, name, words+" remote 192.0.2.2 local 192.0.2.1")
	}
	gre := func(key uint32) []byte { // the start of what k1 or k2 sends
		return binary.BigEndian.AppendUint32([]byte{0x20, 0x00, 0x08, 0x00}, key)
	}
	to := netip.MustParseAddrPort("192.0.2.2:4754")
	socks[4754].report(udpsock.Error{Kind: udpsock.TooBig, To: to, MTU: 1400, Payload: gre(1)})
	socks[4754].report(udpsock.Error{Kind: udpsock.Unreachable, To: to, Payload: gre(2)})
	socks[4754].report(udpsock.Error{Kind: udpsock.TooBig, To: to, MTU: 1300, Payload: gre(3)})       // no such key
	socks[4754].report(udpsock.Error{Kind: udpsock.TooBig, To: to, MTU: 1300, Payload: []byte{0x20}}) // cut short
	socks[5555].report(udpsock.Error{Kind: udpsock.TooBig, To: netip.MustParseAddrPort("192.0.2.2:5555"), MTU: 1200})
	// A multipoint tunnel's report names the neighbour it was sent to.
	mustAdd(t, a, "mp", "mode gre key 4 encap fou local 192.0.2.1")
	mustNeigh(t, a, "198.51.100.2 lladdr 192.0.2.2 dev mp")
	mustNeigh(t, a, "198.51.100.3 lladdr 192.0.2.3 dev mp")
	socks[4754].report(udpsock.Error{Kind: udpsock.TooBig, To: netip.MustParseAddrPort("192.0.2.3:4754"), MTU: 1300, Payload: gre(4)})
	socks[4754].report(udpsock.Error{Kind: udpsock.Unreachable, To: netip.MustParseAddrPort("192.0.2.3:4754"), Payload: gre(4)})
	socks[4754].report(udpsock.Error{Kind: udpsock.TooBig, To: netip.MustParseAddrPort("192.0.2.9:4754"), MTU: 1200, Payload: gre(4)}) // no neighbour
	st, _ := a.e.Show("mp")
	if ns := st[0].Neighbours; len(ns) != 2 || ns[0].PathMTU != 1500-36 || ns[1].PathMTU != 1300-36 || st[0].Stats.TxUnreachable != 1 {
		t.Errorf("multipoint: neighbours %+v, unreachable %d; want path MTUs %d and %d, 1", ns, st[0].Stats.TxUnreachable, 1500-36, 1300-36)
	}
	want := map[string]struct {
		path        int
		unreachable uint64
	}{"plain": {1500 - 28, 0}, "k1": {1400 - 36, 0}, "k2": {1500 - 36, 1}, "other": {1500 - 36, 0}, "ipip": {1200 - 28, 0}}
	for name, w := range want {
		st, _ := a.e.Show(name)
		if st[0].PathMTU != w.path || st[0].Stats.TxUnreachable != w.unreachable {
			t.Errorf("%s: path MTU %d, unreachable %d; want %d, %d", name, st[0].PathMTU, st[0].Stats.TxUnreachable, w.path, w.unreachable)
		}
	}
}

// TestEngineFOUChange: `tunnel change` moves a tunnel into UDP and out
// again, keeping its device; packets follow each time.
func TestEngineFOUChange(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 3 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gre key 3 remote 192.0.2.1 local 192.0.2.2")
	dev := a.dev("t0")
	for i, words := range []string{"encap fou", "encap fou encap-dport 5000", "encap none"} {
		for _, s := range []struct {
			side   *side
			remote string
		}{{a, "192.0.2.2"}, {b, "192.0.2.1"}} {
			c, _ := s.side.e.Config("t0")
			if err := c.Apply(strings.Fields(words)); err != nil {
				t.Fatal(err)
			}
			if err := s.side.e.Change(c); err != nil {
				t.Fatalf("change to %q: %v", words, err)
			}
		}
		pkt := udp4("198.51.100.1", "203.0.113.1", 10+i)
		a.dev("t0").Inject(pkt)
		if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
			t.Fatalf("after %q: packet changed in transit", words)
		}
		if st, _ := a.e.Show("t0"); (st[0].MTU == 1500-28) != (words == "encap none") {
			t.Errorf("after %q: MTU %d", words, st[0].MTU)
		}
	}
	if a.dev("t0") != dev {
		t.Error("the device was replaced")
	}
}

// TestEngineFOUPortFreed: a UDP port is given back once no tunnel uses it,
// as the kernel frees an `ip fou` port: after an add that failed past
// opening it (here the device), a delete, a change to another port, and
// a reload whose new tunnel failed. A port still in use stays open.
func TestEngineFOUPortFreed(t *testing.T) {
	w := tunneltest.NewWire()
	failDev := false
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			if failDev {
				return nil, errors.New("no device today")
			}
			return create(name, mtu)
		}
	})
	parse := func(name, words string) config.Tunnel {
		t.Helper()
		c, err := config.Parse(name, strings.Fields(words+" remote 192.0.2.2 local 192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	free := func(port uint16, want bool) {
		t.Helper()
		s, err := w.OpenUDP(netip.AddrPortFrom(addrA, port))
		if err == nil {
			s.Close()
		}
		if got := err == nil; got != want {
			t.Errorf("port %d free: %v, want %v (%v)", port, got, want, err)
		}
	}
	failDev = true
	if err := a.e.Add(parse("x", "mode gre key 1 encap fou fou-port 4800")); err == nil {
		t.Fatal("add succeeded without a device")
	}
	free(4800, true)
	failDev = false

	mustAdd(t, a, "y", "mode gre key 2 encap fou fou-port 4801 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "z", "mode gre key 3 encap fou fou-port 4801 remote 192.0.2.2 local 192.0.2.1")
	free(4801, false)
	if err := a.e.Del("z"); err != nil {
		t.Fatal(err)
	}
	free(4801, false) // y still receives there
	if err := a.e.Change(parse("y", "mode gre key 2 encap fou fou-port 4802")); err != nil {
		t.Fatal(err)
	}
	free(4801, true)
	free(4802, false)

	failDev = true
	err := a.e.Reload([]config.Tunnel{parse("y", "mode gre key 2 encap fou fou-port 4802"), parse("n", "mode gre key 4 encap fou fou-port 4803")})
	if err == nil {
		t.Fatal("reload succeeded without a device for n")
	}
	failDev = false
	free(4803, true)
	free(4802, false)
	if err := a.e.Del("y"); err != nil {
		t.Fatal(err)
	}
	free(4802, true)
}

// readWatch is a fake device that tells whether the engine is inside Read.
type readWatch struct {
	*tunneltest.Device
	reading atomic.Bool
}

func (d *readWatch) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.reading.Store(true)
	defer d.reading.Store(false)
	return d.Device.Read(bufs, sizes, offset)
}

// sendWatch is an underlay socket that notes whether the device is read
// while it sends: it gives the engine some time to read again before each
// send completes.
type sendWatch struct {
	tunnel.RawConn
	dev        atomic.Pointer[readWatch]
	overlapped atomic.Bool
}

func (s *sendWatch) WriteBatch(pkts [][]byte) (int, error) {
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if d := s.dev.Load(); d != nil && d.reading.Load() {
			s.overlapped.Store(true)
			break
		}
	}
	return s.RawConn.WriteBatch(pkts)
}

// TestEngineFOUSendsInline: a point-to-point tunnel inside UDP sends each
// batch from the goroutine that read it, so its device is not read while
// a send is under way (no hand-off between goroutines per super-packet);
// a plain GRE tunnel keeps the pipeline, which reads on while it sends.
func TestEngineFOUSendsInline(t *testing.T) {
	for _, c := range []struct {
		mode   string
		inline bool
	}{{"mode gre encap fou", true}, {"mode ipip encap fou encap-dport 5555", true}, {"mode gre", false}} {
		t.Run(c.mode, func(t *testing.T) {
			w := tunneltest.NewWire()
			watch := &sendWatch{}
			a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
				create := env.CreateDevice
				env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
					d, err := create(name, mtu)
					if err != nil {
						return nil, err
					}
					rw := &readWatch{Device: d.(*tunneltest.Device)}
					watch.dev.Store(rw)
					return rw, nil
				}
				env.OpenUnderlay = func(k tunnel.UnderlayKey) (tunnel.Underlay, error) {
					if k.UDP() {
						s, err := w.OpenUDP(netip.AddrPortFrom(k.Local, k.Port))
						if err != nil {
							return nil, err
						}
						watch.RawConn = s
						return tunnel.UDPIPv4(watch, k.Port, nil), nil
					}
					watch.RawConn = w.Open(addrA, int(k.Proto))
					return tunnel.RawIPv4(watch), nil
				}
			})
			b := newSide(t, w, addrB, 8)
			mustAdd(t, a, "t0", c.mode+" remote 192.0.2.2 local 192.0.2.1")
			mustAdd(t, b, "t0", c.mode+" remote 192.0.2.1 local 192.0.2.2")
			for i := range 3 {
				pkt := udp4("198.51.100.1", "203.0.113.1", 100+i)
				a.dev("t0").Inject(pkt)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
					t.Fatalf("packet %d changed in transit", i)
				}
			}
			if got := watch.overlapped.Load(); got == c.inline {
				t.Errorf("device read while sending: %v, want %v", got, !c.inline)
			}
		})
	}
}
