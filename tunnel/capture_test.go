package tunnel_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// TestCaptureEngine: a capture gets a tunnel's outer packets both ways
// (inner ones with inner), a second capture of the tunnel is refused, a
// reader that does not read loses packets, counted, while the tunnel goes
// on carrying everything, and deleting the tunnel ends the capture.
func TestCaptureEngine(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 1 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gre key 1 remote 192.0.2.1 local 192.0.2.2")
	sink := b.dev("t0")
	sink.Discard = true
	if _, err := a.e.Capture("nosuch", false); err == nil || !strings.Contains(err.Error(), `no tunnel named "nosuch"`) {
		t.Errorf("capture of an unknown tunnel: %v", err)
	}
	outer, err := a.e.Capture("t0", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.e.Capture("t0", true); !errors.Is(err, tunnel.ErrCaptureBusy) {
		t.Errorf("second capture: %v, want ErrCaptureBusy", err)
	}
	pkt := udp4("198.51.100.1", "203.0.113.1", 100)
	a.dev("t0").Inject(pkt)
	waitPacket := func(c *tunnel.Capture) tunnel.CapturedPacket {
		t.Helper()
		select {
		case p := <-c.Packets():
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no packet captured")
		}
		return tunnel.CapturedPacket{}
	}
	p := waitPacket(outer)
	if !p.Out || p.Drop != "" || header.IPv4(p.Data).Protocol() != header.ProtoGRE || p.Len != len(pkt)+28 {
		t.Errorf("captured %+v, want the outgoing GRE packet", p)
	}
	outer.Release(p)
	// b answers: A receives a GRE packet.
	b.dev("t0").Inject(udp4("203.0.113.1", "198.51.100.1", 50))
	if p := waitPacket(outer); p.Out || header.IPv4(p.Data).Protocol() != header.ProtoGRE {
		t.Errorf("captured %+v, want the incoming GRE packet", p)
	}
	outer.Close()

	// Inner, and a reader that never reads: packets beyond the queue are
	// lost and counted, and all of them still cross.
	inner, err := a.e.Capture("t0", true)
	if err != nil {
		t.Fatalf("capture after Close: %v", err)
	}
	const n = 2000
	for range n {
		a.dev("t0").Inject(pkt)
	}
	// The far end gets the first packet, then these n.
	deadline := time.Now().Add(20 * time.Second)
	for sink.WrittenPackets.Load() < n+1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sink.WrittenPackets.Load(); got != n+1 {
		t.Errorf("the far end got %d of %d packets while nobody read the capture", got, n+1)
	}
	if inner.Lost() == 0 || inner.Seen() != n || inner.Lost() > n {
		t.Errorf("capture saw %d and lost %d of %d packets, want all seen and some lost", inner.Seen(), inner.Lost(), n)
	}
	if p := waitPacket(inner); !p.Out || header.IPv4(p.Data).Protocol() != header.ProtoUDP || len(p.Data) != len(pkt) {
		t.Errorf("inner capture: %+v, want the UDP packet", p)
	}

	if err := a.e.Del("t0"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inner.Done():
	case <-time.After(10 * time.Second):
		t.Error("deleting the tunnel did not end its capture")
	}
}

// TestCaptureDrop: a received packet the tunnel drops is captured with
// its drop reason.
func TestCaptureDrop(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 1 icsum remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gre key 1 remote 192.0.2.1 local 192.0.2.2")
	c, err := a.e.Capture("t0", true) // drops come whatever the kind
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b.dev("t0").Inject(udp4("203.0.113.1", "198.51.100.1", 50))
	select {
	case p := <-c.Packets():
		if p.Out || p.Drop != "checksum-missing" || header.IPv4(p.Data).Protocol() != header.ProtoGRE {
			t.Errorf("captured %+v, want the received GRE packet dropped as checksum-missing", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dropped packet was not captured")
	}
}

// TestCaptureRefused: a packet the kernel refuses, an outer one on the
// underlay or an inner one on the device, is captured with its drop
// reason, not as a packet that went out or in.
func TestCaptureRefused(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 1 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gre key 1 remote 192.0.2.1 local 192.0.2.2")
	next := func(c *tunnel.Capture) tunnel.CapturedPacket {
		t.Helper()
		select {
		case p := <-c.Packets():
			c.Release(p)
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no packet captured")
		}
		return tunnel.CapturedPacket{}
	}

	out, err := a.e.Capture("t0", false)
	if err != nil {
		t.Fatal(err)
	}
	w.Socket(addrA, header.ProtoGRE).RefuseWith(syscall.EHOSTUNREACH)
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 100))
	if p := next(out); !p.Out || p.Drop != "no-route" || header.IPv4(p.Data).Protocol() != header.ProtoGRE {
		t.Errorf("captured %+v, want the outer GRE packet dropped as no-route", p)
	}
	w.Socket(addrA, header.ProtoGRE).RefuseWith(nil)
	out.Close()

	in, err := b.e.Capture("t0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	b.dev("t0").RefuseWith(errors.New("device down"))
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 100))
	if p := next(in); p.Out || p.Drop != "" {
		t.Errorf("captured %+v first, want the inner packet as it was taken from the tunnel", p)
	}
	if p := next(in); p.Out || p.Drop != "device" || header.IPv4(p.Data).Protocol() != header.ProtoUDP {
		t.Errorf("captured %+v, want the inner UDP packet dropped as device", p)
	}
}
