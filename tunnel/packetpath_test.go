package tunnel_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// fakePacket is an AF_PACKET socket over a Wire: it checks each frame's
// Ethernet header and passes the IP packet on.
type fakePacket struct {
	mu      sync.Mutex
	wire    *tunneltest.Socket
	frames  int
	badHdr  int
	failing error // returned for the first frame of the next call, then cleared
}

func (f *fakePacket) WriteBatch(frames [][]byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing; err != nil {
		f.failing = nil
		return 0, err
	}
	want := append(append(append([]byte{}, macB...), macA...), 0x08, 0x00)
	for _, fr := range frames {
		f.frames++
		if len(fr) < 34 || !bytes.Equal(fr[:14], want) {
			f.badHdr++
			continue
		}
		f.wire.WriteBatch([][]byte{fr[14:]})
	}
	return len(frames), nil
}

func (f *fakePacket) Close() error { return nil }

func (f *fakePacket) counts() (frames, bad int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames, f.badHdr
}

func (f *fakePacket) fail(err error) {
	f.mu.Lock()
	f.failing = err
	f.mu.Unlock()
}

// packetSide is side a of newSide with the packet path faked: resolve
// decides what the next-hop lookup answers, and clock is the time the
// path's retries see.
func packetSide(t *testing.T, w *tunneltest.Wire, clock *tunneltest.Clock, resolve func() (tunnel.NextHop, error)) (*side, *fakePacket) {
	fp := &fakePacket{wire: w.Open(netip.MustParseAddr("192.0.2.99"), 0)}
	s := &side{devs: map[string]*tunneltest.Device{}, host: &tunneltest.Host{Local: []netip.Addr{addrA}, Underlay: 1500}}
	env := tunnel.Env{
		CreateDevice: func(name string, mtu int) (tunnel.Device, error) {
			d := tunneltest.NewDevice(name, mtu, 8)
			s.mu.Lock()
			s.devs[name] = d
			s.mu.Unlock()
			return d, nil
		},
		OpenUnderlay: func(k tunnel.UnderlayKey) (tunnel.Underlay, error) {
			return tunnel.RawIPv4(w.Open(addrA, int(k.Proto))), nil
		},
		Host: s.host,
		Now:  clock.Now,
	}
	env.ResolveNextHop = func(netip.Addr, string) (tunnel.NextHop, error) { return resolve() }
	env.OpenPacket = func(ifindex int) (tunnel.PacketWriter, error) {
		if ifindex != 3 {
			return nil, errors.New("wrong ifindex")
		}
		return fp, nil
	}
	s.e = tunnel.New(env, slog.New(slog.DiscardHandler))
	t.Cleanup(s.e.Close)
	return s, fp
}

func stats(t *testing.T, s *side, name string) tunnel.Stats {
	t.Helper()
	st, err := s.e.Show(name)
	if err != nil {
		t.Fatal(err)
	}
	return st[0].Stats
}

// TestPacketPath sends through a tunnel with `underlay packet` over fakes:
// packets leave as Ethernet frames with the resolved addresses and arrive
// unchanged; fragments, a failed send and an unresolved next hop fall back
// to the raw socket.
func TestPacketPath(t *testing.T) {
	w := tunneltest.NewWire()
	var mu sync.Mutex
	resolveErr := error(nil)
	resolves := 0
	clock := tunneltest.NewClock(time.Now())
	a, fp := packetSide(t, w, clock, func() (tunnel.NextHop, error) {
		mu.Lock()
		defer mu.Unlock()
		resolves++
		return tunnel.NextHop{Ifindex: 3, Src: macA, Dst: macB, Confirmed: true}, resolveErr
	})
	b := newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 7 remote 192.0.2.2 local 192.0.2.1 mtu 1500 nopmtudisc underlay packet")
	mustAdd(t, b, "t0", "mode gre key 7 remote 192.0.2.1 local 192.0.2.2 mtu 1500")

	send := func(n int) {
		t.Helper()
		pkt := udp4("198.51.100.1", "203.0.113.1", n)
		a.dev("t0").Inject(pkt)
		if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
			t.Fatalf("packet changed in transit:\n got %x\nwant %x", got, pkt)
		}
	}
	for i := range 10 {
		send(100 + i*100)
	}
	if frames, bad := fp.counts(); frames != 10 || bad != 0 {
		t.Errorf("packet socket got %d frames (%d with a wrong Ethernet header), want 10 good ones", frames, bad)
	}
	// The sender counts a batch once the socket took it, which can be a
	// moment after the far end has the packet.
	waitFor(t, "tx_packet_socket 10", func() bool { return stats(t, a, "t0").TxPacketSocket >= 10 })
	if s := stats(t, a, "t0"); s.TxPacketSocket != 10 {
		t.Errorf("tx_packet_socket = %d, want 10", s.TxPacketSocket)
	}

	// An outer packet over the underlay MTU is fragmented into buffers
	// without headroom: the raw socket sends the fragments.
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 1480-28))
	waitFor(t, "fragments counted", func() bool { return stats(t, a, "t0").TxFragmented >= 2 })
	if frames, _ := fp.counts(); frames != 10 {
		t.Errorf("fragments went to the packet socket: %d frames", frames)
	}

	// A send error is counted like the raw socket's, and until the next
	// resolution (a second later) the raw socket sends.
	fp.fail(syscall.ENETDOWN)
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 64))
	waitFor(t, "the send error counted", func() bool { return stats(t, a, "t0").TxNoRoute == 1 })
	mu.Lock()
	resolveErr = errors.New("no resolved neighbour")
	mu.Unlock()
	send(200)
	if frames, _ := fp.counts(); frames != 10 {
		t.Errorf("packet socket used right after a send error: %d frames", frames)
	}
	// The next hop does not resolve now: the raw socket keeps sending.
	clock.Advance(1100 * time.Millisecond)
	send(300)
	mu.Lock()
	n := resolves
	resolveErr = nil
	mu.Unlock()
	if n < 2 {
		t.Errorf("next hop resolved %d times, want again after the send error", n)
	}
	if frames, _ := fp.counts(); frames != 10 {
		t.Errorf("packet socket used while the next hop did not resolve: %d frames", frames)
	}
	// Once it resolves again the packet socket takes over.
	clock.Advance(1100 * time.Millisecond)
	send(400)
	if frames, _ := fp.counts(); frames != 11 {
		t.Errorf("packet socket got %d frames after the next hop resolved again, want 11", frames)
	}
}

// TestPacketPathResolvesSoon: a next hop not yet resolved when the tunnel
// starts (the kernel resolves it when the raw socket sends the first
// packets) is looked up again within milliseconds, not a second later: a
// short transfer would otherwise never leave the raw socket.
func TestPacketPathResolvesSoon(t *testing.T) {
	w := tunneltest.NewWire()
	var mu sync.Mutex
	resolves := 0
	clock := tunneltest.NewClock(time.Now())
	a, fp := packetSide(t, w, clock, func() (tunnel.NextHop, error) {
		mu.Lock()
		defer mu.Unlock()
		resolves++
		if resolves == 1 {
			return tunnel.NextHop{}, errors.New("no resolved neighbour")
		}
		return tunnel.NextHop{Ifindex: 3, Src: macA, Dst: macB, Confirmed: true}, nil
	})
	b := newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 underlay packet")
	mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
	pkt := udp4("198.51.100.1", "203.0.113.1", 500)
	for i := range 2 {
		if i > 0 {
			clock.Advance(100 * time.Millisecond)
		}
		a.dev("t0").Inject(pkt)
		if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
			t.Fatalf("packet changed in transit")
		}
	}
	if frames, _ := fp.counts(); frames != 1 {
		t.Errorf("packet socket got %d frames, want the second packet, sent 100 ms after a failed first resolution", frames)
	}
}

// TestPacketPathUnavailable: without a packet path in the Env (as over
// fakes) `underlay packet` tunnels send on the raw socket.
func TestPacketPathUnavailable(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 underlay packet")
	mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
	pkt := udp4("198.51.100.1", "203.0.113.1", 500)
	a.dev("t0").Inject(pkt)
	if got := receive(t, b.dev("t0")); !bytes.Equal(got, pkt) {
		t.Fatalf("packet changed in transit")
	}
	if s := stats(t, a, "t0"); s.TxPacketSocket != 0 || s.TxPackets != 1 {
		t.Errorf("stats %+v, want one packet on the raw socket", s)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
