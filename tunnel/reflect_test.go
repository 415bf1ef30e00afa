package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// greIn wraps payload in an IPv4 header src -> dst (protocol GRE, TTL ttl)
// and a GRE header carrying protocol type proto.
func greIn(src, dst netip.Addr, ttl uint8, proto uint16, payload []byte) []byte {
	p := make([]byte, 24, 24+len(payload))
	p[0] = 0x45
	p[8], p[9] = ttl, header.ProtoGRE
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[22:], proto)
	p = append(p, payload...)
	ip := header.IPv4(p)
	ip.SetTotalLen(len(p))
	ip.UpdateChecksum()
	return p
}

// probe is what a Cisco router sends to ask us (addrA) to reflect: outer
// B -> A carrying IPv4 A -> B with inner TTL ttl, carrying GRE protocol 0.
func probe(ttl uint8) []byte {
	inner := greIn(addrA, addrB, ttl, 0, []byte("cisco keepalive"))
	return greIn(addrB, addrA, 64, header.EtherTypeIPv4, inner)
}

// nested is issue 12's ping-pong packet: outer B -> A, inside it A -> B,
// inside that B -> A, …, levels deep, the innermost carrying GRE protocol
// 0. Were every inner GRE packet that mirrors the outer addresses
// reflected, A and B would bounce it levels times.
func nested(levels int) []byte {
	pkt, proto := []byte("keepalive"), uint16(0)
	for i := levels; i >= 0; i-- {
		src, dst := addrB, addrA
		if i%2 == 1 {
			src, dst = addrA, addrB
		}
		pkt, proto = greIn(src, dst, 255, proto, pkt), header.EtherTypeIPv4
	}
	return pkt
}

// waitStats polls name's counters on s until ok holds (5 s at most).
func waitStats(t *testing.T, s *side, name string, ok func(tunnel.Stats) bool) tunnel.Stats {
	t.Helper()
	var st tunnel.Stats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st = stats(t, s, name); ok(st) {
			return st
		}
	}
	t.Fatalf("counters of %s never got there: %+v", name, st)
	return st
}

// readWire returns the next packet sock receives, nil after a while.
func readWire(sock *tunneltest.Socket, wait time.Duration) []byte {
	got := make(chan []byte, 1)
	go func() {
		buf := [][]byte{make([]byte, 2048)}
		sizes := []int{0}
		if n, err := sock.ReadBatch(buf, sizes); err == nil && n == 1 {
			got <- buf[0][:sizes[0]]
		}
	}()
	select {
	case p := <-got:
		return p
	case <-time.After(wait):
		sock.Close()
		return nil
	}
}

// TestEngineReflectsProbeAsForwarding: a keepalive probe comes back to the
// prober with its TTL decremented and its checksum right, like a packet a
// router forwards; with TTL 1, or IP options, it does not come back at all
// and the drop is counted.
func TestEngineReflectsProbeAsForwarding(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	b := w.Open(addrB, header.ProtoGRE) // the prober, a bare socket

	p := probe(255)
	b.WriteBatch([][]byte{p})
	got := readWire(b, 5*time.Second)
	want := append([]byte(nil), p[24:]...)
	want[8]-- // TTL
	header.IPv4(want).UpdateChecksum()
	if !bytes.Equal(got, want) {
		t.Fatalf("reflected\n got %x\nwant %x", got, want)
	}
	if s := stats(t, a, "t0"); s.Reflected != 1 {
		t.Errorf("reflected %d, want 1", s.Reflected)
	}

	withOptions := greIn(addrA, addrB, 255, 0, []byte("cisco keepalive"))
	withOptions = append(withOptions[:20:20], append([]byte{0x83, 3, 4, 0}, withOptions[20:]...)...) // loose source route
	withOptions[0] = 0x46
	header.IPv4(withOptions).SetTotalLen(len(withOptions))
	header.IPv4(withOptions).UpdateChecksum()
	b.WriteBatch([][]byte{probe(1), greIn(addrB, addrA, 64, header.EtherTypeIPv4, withOptions)})
	s := waitStats(t, a, "t0", func(s tunnel.Stats) bool {
		// A drop's reason and its error are two counters: wait for both.
		return s.Drops["reflect-ttl"] == 1 && s.Drops["reflect-header"] == 1 && s.RxErrors >= 2
	})
	if s.Reflected != 1 || s.RxErrors != 2 {
		t.Errorf("after refused probes: %+v", s)
	}
	if p := readWire(b, 100*time.Millisecond); p != nil {
		t.Errorf("a refused probe came back: %x", p)
	}
}

// TestEngineReflectsAtMostOnce: the nested packet of issue 12 between two
// engines is reflected at most once (a plain probe once, as a keepalive
// reply the peer does not reflect again; a nested one not at all: its
// inner GRE carries IP, which is the host's to route).
func TestEngineReflectsAtMostOnce(t *testing.T) {
	for _, levels := range []int{1, 2, 59} {
		w := tunneltest.NewWire()
		a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
		mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
		mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
		attacker := w.Open(netip.MustParseAddr("192.0.2.99"), header.ProtoGRE)
		pkt := nested(levels)
		attacker.WriteBatch([][]byte{pkt})
		if levels == 1 {
			// The reflection reaches B as a keepalive reply it never asked for.
			waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxKeepaliveUnsolicited == 1 })
		} else if got := receive(t, a.dev("t0")); !bytes.Equal(got, pkt[24:]) {
			t.Fatalf("%d levels: A's device got %x, want the first inner packet", levels, got)
		}
		time.Sleep(20 * time.Millisecond) // room for a bounce, were there one
		sa, sb := stats(t, a, "t0"), stats(t, b, "t0")
		if want := uint64(min(levels, 2) % 2); sa.Reflected != want || sb.Reflected != 0 {
			t.Errorf("%d levels: A reflected %d (want %d), B %d (want 0)", levels, sa.Reflected, want, sb.Reflected)
		}
	}
}

// TestEngineReflectionRateLimit: a flood of probes is reflected no faster
// than the limit allows; the rest are counted as reflect-limited.
func TestEngineReflectionRateLimit(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	b := w.Open(addrB, header.ProtoGRE)
	const n = 200
	flood := make([][]byte, n)
	for i := range flood {
		flood[i] = probe(64)
	}
	start := time.Now()
	b.WriteBatch(flood)
	s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.Reflected+s.Drops["reflect-limited"] == n })
	elapsed := time.Since(start)
	if max := uint64(tunnel.ReflectBurst) + uint64(elapsed/tunnel.ReflectEvery) + 1; s.Reflected > max {
		t.Errorf("%d probes reflected in %v, the limit allows %d", s.Reflected, elapsed, max)
	}
	if s.Reflected == 0 {
		t.Error("nothing reflected")
	}
}

// TestEngineNoReflect: with `noreflect` a probe is handed to the host
// (the device) like any packet, so its forwarding rules decide; `reflect`
// on a change turns reflection back on.
func TestEngineNoReflect(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 noreflect")
	b := w.Open(addrB, header.ProtoGRE)
	p := probe(255)
	b.WriteBatch([][]byte{p})
	if got := receive(t, a.dev("t0")); !bytes.Equal(got, p[24:]) {
		t.Fatalf("device got %x, want the probe's inner packet", got)
	}
	if s := stats(t, a, "t0"); s.Reflected != 0 {
		t.Errorf("noreflect, yet %d reflected", s.Reflected)
	}
	c, _ := a.e.Config("t0")
	if err := c.Apply([]string{"reflect"}); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Change(c); err != nil {
		t.Fatal(err)
	}
	b.WriteBatch([][]byte{p})
	if readWire(b, 5*time.Second) == nil {
		t.Fatal("no reflection after `tunnel change … reflect`")
	}
}
