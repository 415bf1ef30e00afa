package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/keepalive"
	"github.com/gretun/gretun/pmtu"
)

// Tunnel is one running tunnel: its device, its lifecycle (the sending
// goroutines, started and stopped with it), what belongs to the device
// (counters, MTU, ICMP errors for inner senders) and its peer, the far end
// (peer.go). Its receive state is driven by its underlay's goroutine.
type Tunnel struct {
	e    *Engine
	name string
	dev  Device
	// headroom is dev.Headroom(): where packets start in the buffers
	// the device reads and writes.
	headroom int
	// ethernet says the device carries Ethernet frames (gretap), not IP.
	ethernet bool

	cfg atomic.Pointer[config.Tunnel]
	mtu atomic.Int64 // device MTU

	// peer is a point-to-point tunnel's far end; nb, instead, a
	// multipoint tunnel's table of them (neigh.go), which finds the peer
	// of each packet (peerFrom, and by inner destination when sending).
	peer *peer
	nb   *neighbours

	// The ICMP errors that oversize inner packets get (issue: they are
	// answered, never black-holed); the path MTU is the peer's.
	icmpRate pmtu.Limiter
	icmpOut  [][]byte                   // ICMP errors for the device, gathered per batch
	addr6    atomic.Pointer[netip.Addr] // the device's IPv6 address, for icmpSource

	counters       counters
	tap            atomic.Pointer[Capture] // nil unless someone captures (capture.go)
	deadLoopLogged atomic.Bool
	quit           chan struct{}

	stopping atomic.Bool
	wg       sync.WaitGroup
}

func newTunnel(e *Engine, c config.Tunnel, sock *socket) (*Tunnel, error) {
	var enc *encap.Encapsulator
	var err error
	if !c.Multipoint() {
		if enc, err = encap.New(c.Encap()); err != nil {
			return nil, err
		}
	}
	underlay := 1500 // a multipoint tunnel's neighbours have routes of their own
	if !c.Multipoint() {
		underlay = e.underlayMTU(c.Remote, egressOf(&c), true)
	}
	mtu := configuredMTU(&c, underlay, sock)
	dev, err := e.createDevice(&c, mtu)
	if err != nil {
		return nil, err
	}
	payload := PayloadIP
	if c.Ethernet() {
		payload = PayloadEthernet
	}
	if dev.Payload() != payload || dev.Headroom() > maxHeadroom {
		dev.Close()
		what := "IP packets"
		if payload == PayloadEthernet {
			what = "Ethernet frames"
		}
		return nil, fmt.Errorf("device %s: mode %s carries %s with at most %d bytes of headroom", c.Name, c.Mode, what, maxHeadroom)
	}
	if err := dev.Up(mtu); err != nil {
		dev.Close()
		return nil, fmt.Errorf("setting up device %s: %v", c.Name, err)
	}
	t := &Tunnel{e: e, name: c.Name, dev: dev, headroom: dev.Headroom(), ethernet: payload == PayloadEthernet, quit: make(chan struct{})}
	t.cfg.Store(&c)
	t.mtu.Store(int64(mtu))
	t.setAddrs(dev.Addrs())
	if c.Multipoint() {
		t.nb = newNeighbours(sock)
		return t, nil // no keepalives: the spokes send them, the hub reflects them
	}
	t.peer = newPeer(t, &c, enc, endpointOf(&c, sock), underlay, mtu)
	ka, err := newKeepalive(&c)
	if err != nil {
		dev.Close()
		return nil, err
	}
	t.peer.setKeepalive(ka)
	return t, nil
}

// createDevice creates c's device: its TUN device, or the userspace stack
// of a `netstack` tunnel.
func (e *Engine) createDevice(c *config.Tunnel, mtu int) (Device, error) {
	if c.Stack != nil {
		if e.env.CreateStack == nil {
			return nil, errors.New("netstack tunnels are not supported here")
		}
		dev, err := e.env.CreateStack(c, mtu, e.log.With("tunnel", c.Name))
		if err != nil {
			return nil, fmt.Errorf("starting the netstack of %s: %v", c.Name, err)
		}
		return dev, nil
	}
	create, kind := e.env.CreateDevice, "TUN"
	if c.Ethernet() {
		if e.env.CreateTAP == nil {
			return nil, fmt.Errorf("mode %s needs TAP devices, which this engine cannot create", c.Mode)
		}
		create, kind = e.env.CreateTAP, "TAP"
	}
	dev, err := create(c.Name, mtu)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("creating %s device %s needs CAP_NET_ADMIN and access to /dev/net/tun: %v", kind, c.Name, err)
		}
		return nil, fmt.Errorf("creating %s device %s: %v", kind, c.Name, err)
	}
	return dev, nil
}

// underlayMTU is the MTU of the underlay device the route toward remote
// leaves by (lowered by an mtu metric on the route itself), 1500 when
// unknown; warn says whether to log that it is unknown (once, when the
// tunnel is set up, not on every link event). It never includes a path MTU
// learnt from ICMP (a route exception): like the kernel's
// ip_tunnel_bind_dev, the device MTU follows the underlay device, and a
// learnt path MTU stays soft state in the peer's pmtu, where it expires.
func (e *Engine) underlayMTU(remote netip.Addr, out Egress, warn bool) int {
	mtu, err := e.env.Host.RouteMTU(remote, out)
	if err != nil || mtu <= 0 {
		if warn {
			e.log.Warn("no route MTU toward remote, assuming 1500", "remote", remote, "err", err)
		}
		return 1500
	}
	return mtu
}

// configuredMTU is the MTU configuration c gives the device: its `mtu`, else
// the underlay's MTU less the tunnel's overhead on sock.
func configuredMTU(c *config.Tunnel, underlay int, sock *socket) int {
	if c.MTU != 0 {
		return c.MTU
	}
	return defaultMTU(c, underlay-sock.overhead(c))
}

// defaultMTU is the device MTU of a tunnel whose path leaves room for
// mtu: an IPv6 tunnel's, and sit's, which carries IPv6 only, is at least
// IPv6's minimum of 1280, as Linux's ip6_tnl, ip6_gre and sit make it, so
// that IPv6 runs over a 1280-byte underlay; what does not fit the path
// goes in outer fragments (RFC 2473 section 7.1, RFC 4213 section 3.2).
func defaultMTU(c *config.Tunnel, mtu int) int {
	if c.Mode.IPv6() || c.Mode.Encap() == encap.ModeIP6 {
		return max(mtu, header.IPv6MinMTU)
	}
	return mtu
}

// MTU returns the device's MTU.
func (t *Tunnel) MTU() int { return int(t.mtu.Load()) }

func (t *Tunnel) start() {
	t.wg.Add(1)
	go t.transmit()
	if t.peer != nil {
		t.peer.start()
	}
}

// stop closes the device (which ends the goroutines) and waits for them.
func (t *Tunnel) stop() {
	t.endCapture()
	t.stopping.Store(true)
	close(t.quit)
	t.dev.Close()
	t.wg.Wait()
}

// deviceMTU follows a change of the device's MTU made outside gretun
// (`ip link set dev NAME mtu N`), reported by the engine's link watcher.
func (t *Tunnel) deviceMTU(mtu int) {
	if mtu == t.MTU() || mtu <= 0 {
		return
	}
	t.mtu.Store(int64(mtu))
	t.eachPeer(func(p *peer) {
		p.txMu.Lock()
		p.setPathLimit(t.cfg.Load(), mtu)
		p.txMu.Unlock()
	})
}

// reconfigure applies a changed configuration; e.mu is held. What can
// fail is done before anything changes. It keeps the state a running
// tunnel has built up, as `ip tunnel change` does: the device with its
// addresses and routes, the counters, the outgoing sequence number and
// identification (always) and the expected incoming sequence number
// (while iseq stays on and the remote stays: RFC 2890 peers drop older
// numbers, so a restart at 0 would black-hole the tunnel), the learnt path
// MTU (while the endpoints stay: it describes their path), the ICMP rate
// limit, and the keepalive state with its flap damping. The MSS clamp
// keeps no state of its own: it follows the configuration and path MTU.
func (t *Tunnel) reconfigure(c config.Tunnel, sock *socket) error {
	if t.nb != nil {
		return t.reconfigureNeighbours(c, sock)
	}
	enc, err := encap.New(c.Encap())
	if err != nil {
		return err
	}
	old := t.cfg.Load()
	kaChanged := old.KeepalivePeriod != c.KeepalivePeriod || old.KeepaliveRetries != c.KeepaliveRetries
	var ka *keepalive.Machine
	if kaChanged {
		if ka, err = newKeepalive(&c); err != nil {
			return err
		}
	}
	underlay := t.e.underlayMTU(c.Remote, egressOf(&c), true)
	mtu := configuredMTU(&c, underlay, sock)
	if mtu != t.MTU() {
		if err := t.dev.SetMTU(mtu); err != nil {
			return fmt.Errorf("setting MTU of %s: %v", t.name, err)
		}
		t.mtu.Store(int64(mtu))
	}
	if kaChanged {
		t.peer.setKeepalive(ka)
	}
	t.peer.reconfigure(old, &c, enc, endpointOf(&c, sock), underlay, mtu)
	t.cfg.Store(&c)
	return nil
}

func (t *Tunnel) status() Status {
	c := *t.cfg.Load()
	st := Status{Config: c, Line: c.String(), MTU: t.MTU(), Stats: t.counters.snapshot()}
	if t.nb != nil {
		st.PathMTU = st.MTU
		st.Neighbours = t.peerStatus(time.Now())
		for _, n := range st.Neighbours {
			st.PathMTU = min(st.PathMTU, n.PathMTU)
		}
		t.eachPeer(func(p *peer) { st.Stats.Reflected += p.reflected.Load() })
		return st
	}
	p := t.peer
	st.Stats.Reflected = p.reflected.Load()
	now := time.Now()
	st.PathMTU = p.pmtu.Effective(now)
	if m := p.ka.Load(); m != nil {
		st.Keepalive = newKeepaliveStatus(m.Snapshot(now))
	}
	return st
}

// refreshUnderlay re-reads the underlay MTU toward the remote and, unless
// the MTU is fixed with `mtu`, follows it with the device MTU.
func (t *Tunnel) refreshUnderlay() {
	c := t.cfg.Load()
	if t.nb != nil {
		// Each neighbour follows the route toward it; the device MTU
		// stays as configured.
		t.eachPeer(func(p *peer) {
			underlay := t.e.underlayMTU(p.ep.to.Addr(), p.ep.out, false)
			p.txMu.Lock()
			p.underlayMTU = underlay
			p.setPathLimit(c, t.MTU())
			p.txMu.Unlock()
		})
		return
	}
	underlay := t.e.underlayMTU(c.Remote, egressOf(c), false)
	p := t.peer
	p.txMu.Lock()
	changed := underlay != p.underlayMTU
	p.underlayMTU = underlay
	mtu := t.MTU()
	if c.MTU == 0 {
		mtu = defaultMTU(c, underlay-p.ep.sock.overhead(c))
	}
	p.setPathLimit(c, mtu)
	p.txMu.Unlock()
	if changed && c.MTU == 0 && mtu != t.MTU() && mtu >= 68 {
		if err := t.dev.SetMTU(mtu); err != nil {
			t.e.log.Warn("cannot follow the underlay MTU", "tunnel", t.name, "mtu", mtu, "err", err)
			return
		}
		t.mtu.Store(int64(mtu))
		t.e.log.Info("underlay MTU changed", "tunnel", t.name, "underlay", underlay, "mtu", mtu)
	}
}

// reconfigureNeighbours applies a changed configuration to a multipoint
// tunnel: what reconfigure does for its one peer, for each neighbour. The
// encapsulators are all built before anything changes.
func (t *Tunnel) reconfigureNeighbours(c config.Tunnel, sock *socket) error {
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	encs := map[*peer]*encap.Encapsulator{}
	for a, p := range nb.peers {
		enc, err := encapTo(&c, a)
		if err != nil {
			return err
		}
		encs[p] = enc
	}
	mtu := configuredMTU(&c, 1500, sock)
	if mtu != t.MTU() {
		if err := t.dev.SetMTU(mtu); err != nil {
			return fmt.Errorf("setting MTU of %s: %v", t.name, err)
		}
		t.mtu.Store(int64(mtu))
	}
	old := t.cfg.Load()
	nb.sock = sock
	for a, p := range nb.peers {
		p.reconfigure(old, &c, encs[p], endpointTo(&c, sock, a), t.e.underlayMTU(a, egressOf(&c), false), mtu)
	}
	t.cfg.Store(&c)
	return nil
}

// clampMSS is the MSS to clamp received SYNs to (peer.clampMSS): a
// multipoint tunnel derives it from the device MTU.
func (t *Tunnel) clampMSS() int {
	if t.peer != nil {
		return t.peer.clampMSS()
	}
	c := t.cfg.Load()
	switch {
	case !c.ClampMSS:
		return 0
	case c.MSS != 0:
		return c.MSS
	}
	return -t.MTU()
}

// mssFor turns clampMSS's answer into the MSS for this packet's family.
func mssFor(mss int, pkt []byte) uint16 {
	if mss > 0 {
		return uint16(mss)
	}
	return pmtu.MSSFor(-mss, header.IPVersion(pkt) == 6)
}
