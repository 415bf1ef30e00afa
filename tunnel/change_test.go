package tunnel_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/keepalive"
	"github.com/gretun/gretun/rawsock"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// change applies words to the named tunnel's configuration, as `gretun
// tunnel change NAME WORDS…` does.
func change(t *testing.T, s *side, name, words string) {
	t.Helper()
	c, ok := s.e.Config(name)
	if !ok {
		t.Fatalf("no tunnel %s", name)
	}
	if err := c.Apply(strings.Fields(words)); err != nil {
		t.Fatal(err)
	}
	if err := s.e.Change(c); err != nil {
		t.Fatalf("change %s %s: %v", name, words, err)
	}
}

func status(t *testing.T, s *side, name string) tunnel.Status {
	t.Helper()
	st, err := s.e.Show(name)
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// waitStatus polls the named tunnel's status until ok says yes, and fails
// with what it saw after a generous deadline.
func waitStatus(t *testing.T, s *side, name, what string, ok func(tunnel.Status) bool) tunnel.Status {
	t.Helper()
	var st tunnel.Status
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st = status(t, s, name); ok(st) {
			return st
		}
	}
	t.Fatalf("%s: never happened; status %+v", what, st)
	return st
}

// TestEngineChangeKeepsSequence: `tunnel change` of the TTL on the sending
// side, then a change of the receiving side's policy that keeps iseq: every
// packet still arrives (the sender goes on counting where it was, not from
// 0), and a replay of an old packet right after the receiver's change is
// still refused as out of sequence.
func TestEngineChangeKeepsSequence(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre seq csum remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gre seq remote 192.0.2.1 local 192.0.2.2")
	send := func(n int) {
		t.Helper()
		for i := range n {
			a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 10+i))
			receive(t, b.dev("t0"))
		}
	}
	send(5)
	change(t, a, "t0", "ttl 64")
	send(5)
	change(t, b, "t0", "icsum")

	// A replay of the first packet A sent (sequence number 0) before any
	// new packet reaches B's changed policy.
	c, _ := a.e.Config("t0")
	old, err := encap.New(c.Encap())
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, encap.Headroom), udp4("198.51.100.1", "203.0.113.1", 10)...)
	replay, err := old.Encap(buf, encap.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	spoofer := w.Open(netip.MustParseAddr("192.0.2.3"), 47)
	if _, err := spoofer.WriteBatch([][]byte{replay}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, "t0", "the replay handled", func(st tunnel.Status) bool { return st.Stats.RxErrors+st.Stats.RxPackets > 10 })
	send(5)
	st := waitStatus(t, b, "t0", "15 packets counted", func(st tunnel.Status) bool { return st.Stats.RxPackets >= 15 })
	if s := st.Stats; s.RxPackets != 15 || s.RxOutOfSeq != 1 {
		t.Errorf("B received %d packets and %d out of sequence, want the 15 sent and the replay refused (drops %v)", s.RxPackets, s.RxOutOfSeq, s.Drops)
	}
}

// fakeICMP reports each TooBig sent on its channel, like rawsock.ICMPConn.
type fakeICMP struct {
	reports chan rawsock.TooBig
	closed  chan struct{}
}

func (f *fakeICMP) ReadTooBig([]byte) (rawsock.TooBig, error) {
	select {
	case tb := <-f.reports:
		return tb, nil
	case <-f.closed:
		return rawsock.TooBig{}, net.ErrClosed
	}
}

func (f *fakeICMP) Close() error { close(f.closed); return nil }

// TestEngineChangeKeepsPathMTU: a path MTU learnt from the underlay holds
// across a change that keeps the endpoints, and is forgotten with a new
// remote, whose path it does not describe.
func TestEngineChangeKeepsPathMTU(t *testing.T) {
	icmp := &fakeICMP{reports: make(chan rawsock.TooBig, 1), closed: make(chan struct{})}
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenICMP = func() (tunnel.ICMPSource, error) { return icmp, nil }
	})
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1")
	full := status(t, a, "t0").PathMTU
	icmp.reports <- rawsock.TooBig{Src: addrA, Dst: addrB, Proto: 47, MTU: 1200, Quote: []byte{0x45, 0, 0x05, 0xdc}}
	waitStatus(t, a, "t0", "path MTU learnt", func(st tunnel.Status) bool { return st.PathMTU == 1200-24 })
	change(t, a, "t0", "ttl 64")
	if got := status(t, a, "t0").PathMTU; got != 1200-24 {
		t.Errorf("path MTU after a ttl change: %d, want the learnt %d", got, 1200-24)
	}
	change(t, a, "t0", "remote 192.0.2.3")
	if got := status(t, a, "t0").PathMTU; got != full {
		t.Errorf("path MTU toward a new remote: %d, want the device's %d", got, full)
	}
}

// TestEngineChangeKeepsKeepaliveState: a tunnel whose peer does not answer
// is down; a new keepalive period keeps it down (carrier off) and its
// counters go on.
func TestEngineChangeKeepsKeepaliveState(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 20ms 2")
	st := waitStatus(t, a, "t0", "keepalive down", func(st tunnel.Status) bool {
		up, set := a.host.CarrierOf("t0")
		return st.Keepalive.State == "down" && set && !up
	})
	change(t, a, "t0", "keepalive 30ms 3")
	after := status(t, a, "t0").Keepalive
	if up, _ := a.host.CarrierOf("t0"); up || after.State != "down" || after.Sent < st.Keepalive.Sent || !after.Since.Equal(st.Keepalive.Since) {
		t.Errorf("after a new keepalive period: carrier up %v, %+v; before %+v", up, after, st.Keepalive)
	}
	c, _ := a.e.Config("t0")
	if c.KeepalivePeriod != 30*time.Millisecond {
		t.Errorf("period %v after the change", c.KeepalivePeriod)
	}
}

// TestEngineCarrierFollowsLatestKeepaliveState: a keepalive sent after
// Retries unanswered takes the line down, its reply takes it up again on
// the receiving goroutine, and that goroutine sets the carrier on before
// the keepalive goroutine sets it off for the down. The carrier must end
// on, as the line protocol is: off, the tunnel would stay without carrier
// while its keepalives say up (the soak's final ping through ka lost
// 20 of 20 so).
func TestEngineCarrierFollowsLatestKeepaliveState(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 keepalive 3600 3")
	waitStatus(t, a, "t0", "the first keepalive sent", func(st tunnel.Status) bool { return st.Keepalive.Sent == 1 })
	down, up := tunnel.ReplyOvertakesDown(a.e, "t0")
	if down.To != keepalive.Down || up.To != keepalive.Up {
		t.Fatalf("events %v and %v, want a down and an up", down, up)
	}
	st := status(t, a, "t0").Keepalive
	if c, set := a.host.CarrierOf("t0"); !set || !c || st.State != "up" {
		t.Errorf("after a down overtaken by the up: carrier on %v (set %v), line protocol %s; want both up", c, set, st.State)
	}
}
