package tunnel_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// side is one fake host running an engine.
type side struct {
	e    *tunnel.Engine
	mu   sync.Mutex
	devs map[string]*tunneltest.Device
	host *tunneltest.Host
}

func newSide(t testing.TB, w *tunneltest.Wire, addr netip.Addr, batch int, opts ...func(*tunnel.Env)) *side {
	s := &side{devs: map[string]*tunneltest.Device{}, host: &tunneltest.Host{Local: []netip.Addr{addr}, Underlay: 1500}}
	create := func(newDev func(string, int, int) *tunneltest.Device) func(string, int) (tunnel.Device, error) {
		return func(name string, mtu int) (tunnel.Device, error) {
			d := newDev(name, mtu, batch)
			d.Host = s.host
			s.mu.Lock()
			s.devs[name] = d
			s.mu.Unlock()
			return d, nil
		}
	}
	env := tunnel.Env{
		CreateDevice: create(tunneltest.NewDevice),
		CreateTAP:    create(tunneltest.NewTAP),
		OpenUnderlay: func(k tunnel.UnderlayKey) (tunnel.Underlay, error) {
			if k.UDP() {
				c, err := w.OpenUDP(netip.AddrPortFrom(k.Local, k.Port))
				if err != nil {
					return nil, err
				}
				return tunnel.UDPIPv4(c, k.Port, nil), nil
			}
			return tunnel.RawIPv4(w.Open(addr, int(k.Proto))), nil
		},
		Host: s.host,
	}
	for _, o := range opts {
		o(&env)
	}
	s.e = tunnel.New(env, slog.New(slog.DiscardHandler))
	t.Cleanup(s.e.Close)
	return s
}

func (s *side) dev(name string) *tunneltest.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devs[name]
}

func mustAdd(t testing.TB, s *side, name string, words string) {
	t.Helper()
	c, err := config.Parse(name, strings.Fields(words))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.e.Add(c); err != nil {
		t.Fatal(err)
	}
}

// udp4 builds an IPv4/UDP packet with a payload of n bytes.
func udp4(src, dst string, n int) []byte {
	p := make([]byte, 28+n)
	ip := header.IPv4(p)
	p[0] = 0x45
	ip.SetTotalLen(len(p))
	ip.SetTTL(64)
	p[9] = header.ProtoUDP
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	ip.UpdateChecksum()
	for i := 28; i < len(p); i++ {
		p[i] = byte(i)
	}
	return p
}

func receive(t *testing.T, d *tunneltest.Device) []byte {
	t.Helper()
	select {
	case p := <-d.Written:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet arrived")
		return nil
	}
}

// TestEngineCarriesPackets sends packets through a GRE tunnel between two
// engines over fake devices and checks they arrive byte for byte.
func TestEngineCarriesPackets(t *testing.T) {
	for _, opts := range []string{"mode gre", "mode ipip", "mode gre key 7 csum seq", "mode gre ikey 1 okey 2"} {
		t.Run(opts, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			optsB := strings.Replace(opts, "ikey 1 okey 2", "ikey 2 okey 1", 1)
			mustAdd(t, a, "t0", opts+" remote 192.0.2.2 local 192.0.2.1")
			mustAdd(t, b, "t0", optsB+" remote 192.0.2.1 local 192.0.2.2")
			for i := 0; i < 20; i++ {
				pkt := udp4("198.51.100.1", "203.0.113.1", 100+i*50)
				a.dev("t0").Inject(pkt)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
					t.Fatalf("packet %d changed in transit:\n got %x\nwant %x", i, got, pkt)
				}
			}
			// The counters are added once the device write returns.
			s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == 20 })
			if s.RxPackets != 20 || s.RxErrors != 0 {
				t.Errorf("B counters: %+v", s)
			}
		})
	}
}

// TestEngineDemuxByKey: two tunnels between the same hosts, told apart by key.
func TestEngineDemuxByKey(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	for _, k := range []string{"1", "2"} {
		mustAdd(t, a, "k"+k, "mode gre key "+k+" remote 192.0.2.2 local 192.0.2.1")
		mustAdd(t, b, "k"+k, "mode gre key "+k+" remote 192.0.2.1 local 192.0.2.2")
	}
	mustAdd(t, a, "k3", "mode gre key 3 remote 192.0.2.2 local 192.0.2.1")
	a.dev("k2").Inject(udp4("198.51.100.2", "203.0.113.2", 10))
	receive(t, b.dev("k2"))
	a.dev("k3").Inject(udp4("198.51.100.3", "203.0.113.3", 10))
	waitFor(t, "an unmatched packet", func() bool { return b.e.Unmatched().Drops["no-tunnel"] >= 1 })
	if got := b.e.Unmatched().Drops["no-tunnel"]; got != 1 {
		t.Errorf("unmatched no-tunnel = %d, want 1", got)
	}
	st, _ := b.e.Show("k1")
	if st[0].Stats.RxPackets != 0 {
		t.Errorf("k1 received a packet meant for k2")
	}
}

// TestEngineIPv6OverIPIPDropped: IPIP carries IPv4 only.
func TestEngineIPv6OverIPIPDropped(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode ipip remote 192.0.2.2 local 192.0.2.1")
	v6 := make([]byte, 48)
	v6[0] = 0x60
	v6[5] = 8
	a.dev("t0").Inject(v6)
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxBadInner >= 1 }); s.TxBadInner != 1 {
		t.Fatalf("IPv6 on an IPIP tunnel counted %d times as a bad inner packet", s.TxBadInner)
	}
}

// TestEngineErrors: nothing is half-created by a refused add.
func TestEngineErrors(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	for _, tc := range []struct{ name, words, want string }{
		{"t0", "mode gre remote 192.0.2.3 local 192.0.2.1", "already exists"},
		{"t1", "mode gre remote 192.0.2.2 local 192.0.2.1", "same key"},
		{"t2", "mode gre remote 192.0.2.2 local 192.0.2.9", "not configured"},
	} {
		c, err := config.Parse(tc.name, strings.Fields(tc.words))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add %s %s: %v, want an error with %q", tc.name, tc.words, err, tc.want)
		}
	}
	if names := a.e.Names(); len(names) != 1 {
		t.Errorf("tunnels after refused adds: %v", names)
	}
}

// TestEngineKeepaliveReflection: keepalives on A only; B reflects them and
// A stays up; when B goes away, A's carrier goes off. A gretap tunnel's
// keepalives are the same Cisco probes, IPv4 in GRE 0x0800, which the far
// gretap reflects like a gre tunnel, counting no error on either side.
func TestEngineKeepaliveReflection(t *testing.T) {
	for _, mode := range []string{"mode gre key 5", "mode gretap key 5 csum seq"} {
		t.Run(mode, func(t *testing.T) {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			mustAdd(t, a, "t0", mode+" remote 192.0.2.2 local 192.0.2.1 keepalive 50ms 5")
			mustAdd(t, b, "t0", mode+" remote 192.0.2.1 local 192.0.2.2")
			var st []tunnel.Status
			waitFor(t, "5 keepalive replies", func() bool {
				st, _ = a.e.Show("t0")
				ka := st[0].Keepalive
				return ka != nil && ka.Received >= 5
			})
			// Under heavy load a reply may come back later than PERIOD×RETRIES and
			// be rejected as stale: that is the design, so only replies are counted.
			if ka := st[0].Keepalive; ka == nil || ka.State != "up" || ka.Received < 5 {
				t.Fatalf("keepalives with a reflecting peer: %+v", ka)
			}
			stB, _ := b.e.Show("t0")
			if stB[0].Stats.Reflected < 5 {
				t.Errorf("B reflected %d keepalives", stB[0].Stats.Reflected)
			}
			if st[0].Stats.RxErrors != 0 || stB[0].Stats.RxErrors != 0 || stB[0].Stats.RxPackets != 0 {
				t.Errorf("A %+v\nB %+v", st[0].Stats, stB[0].Stats)
			}
			b.e.Del("t0")
			// The carrier goes off just after the state changes: wait for both.
			waitFor(t, "state down and carrier off after the peer went away", func() bool {
				st, _ = a.e.Show("t0")
				up, set := a.host.CarrierOf("t0")
				return st[0].Keepalive.State == "down" && set && !up
			})
		})
	}
}

// TestEngineReloadSwapsKeys: a reload may trade keys between two tunnels,
// change a mode (by recreating the tunnel) and refuses a set that is
// invalid as a whole without touching anything.
func TestEngineReloadSwapsKeys(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	parse := func(name, words string) config.Tunnel {
		c, err := config.Parse(name, strings.Fields(words))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := "remote 192.0.2.2 local 192.0.2.1"
	if err := a.e.Reload([]config.Tunnel{parse("a", "mode gre key 1 "+base), parse("b", "mode gre key 2 "+base)}); err != nil {
		t.Fatal(err)
	}
	devB := a.dev("b")
	if err := a.e.Reload([]config.Tunnel{parse("a", "mode gre key 2 "+base), parse("b", "mode gre key 1 "+base)}); err != nil {
		t.Fatalf("swapping keys: %v", err)
	}
	if c, _ := a.e.Config("a"); c.IKey != 2 {
		t.Errorf("a has key %d after the swap", c.IKey)
	}
	if a.dev("b") != devB {
		t.Error("a changed tunnel was recreated")
	}
	if err := a.e.Reload([]config.Tunnel{parse("a", "mode gre key 3 "+base), parse("b", "mode gre key 3 "+base)}); err == nil {
		t.Error("two tunnels with one key were accepted")
	}
	if c, _ := a.e.Config("a"); c.IKey != 2 {
		t.Errorf("a refused reload changed a to key %d", c.IKey)
	}
	if err := a.e.Reload([]config.Tunnel{parse("a", "mode ipip "+base), parse("b", "mode gre key 1 "+base)}); err != nil {
		t.Fatalf("changing a mode: %v", err)
	}
	if c, _ := a.e.Config("a"); c.Mode != config.ModeIPIP {
		t.Errorf("a is %s", c.Mode)
	}
	if err := a.e.Change(parse("b", "mode ipip "+base)); err == nil || !strings.Contains(err.Error(), "cannot change mode") {
		t.Errorf("tunnel change of mode: %v", err)
	}
}

// TestEngineChangeOntoAnotherKey: a change may not take another tunnel's
// endpoints and key.
func TestEngineChangeOntoAnotherKey(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "a", "mode gre key 1 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "b", "mode gre key 2 remote 192.0.2.2 local 192.0.2.1")
	c, _ := a.e.Config("b")
	if err := c.Apply([]string{"key", "1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Change(c); err == nil || !strings.Contains(err.Error(), `"a" already uses`) {
		t.Errorf("change onto another tunnel's key: %v", err)
	}
}

// TestEngineDeadLoop: a packet read from the tunnel's own device that is
// one of its own outer packets (the route to the remote leads into the
// tunnel) is dropped and counted, not encapsulated again.
func TestEngineDeadLoop(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	own := udp4("192.0.2.1", "192.0.2.2", 40)
	own[9] = header.ProtoGRE
	header.IPv4(own).UpdateChecksum()
	a.dev("t0").Inject(own)
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 40))
	waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxDeadLoop == 1 && s.TxPackets == 1 })
}
