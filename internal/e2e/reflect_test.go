package e2e

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// greIPv4 is an IPv4 packet src -> dst, protocol GRE, TTL ttl, carrying a
// GRE header with protocol type proto and then payload; options, when
// given, go into the IPv4 header.
func greIPv4(src, dst string, ttl byte, proto uint16, payload []byte, options ...byte) []byte {
	hl := 20 + len(options)
	p := make([]byte, hl+4, hl+4+len(payload))
	p[0] = 0x40 | byte(hl/4)
	p[8], p[9] = ttl, unix.IPPROTO_GRE
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	copy(p[20:], options)
	binary.BigEndian.PutUint16(p[hl+2:], proto)
	p = append(p, payload...)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	return p
}

// probeFor is the keepalive probe a Cisco router at `from` sends to `to`:
// outer from -> to carrying IPv4 to -> from (TTL ttl, options as given)
// carrying GRE protocol type 0.
func probeFor(from, to string, ttl byte, options ...byte) []byte {
	return greIPv4(from, to, 64, 0x0800, greIPv4(to, from, ttl, 0, []byte("keepalive"), options...))
}

// TestReflectionPingPong is issue 12's experiment: an attacker in a third
// namespace spoofs, from B to A, a GRE packet nesting 59 levels of GRE
// whose addresses alternate, the way a keepalive probe's inner packet
// mirrors the outer one. A and B run gretun with no keepalives. It must not
// bounce between them: only a keepalive probe is reflected, once, with its
// TTL decremented, and probes whose TTL expires or that carry IP options
// are dropped and counted.
func TestReflectionPingPong(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	c, err := tp.Net.NS("c")
	if err != nil {
		t.Fatal(err)
	}
	// The attacker stands for anyone on the underlay path: reverse-path
	// filtering off on A, as on a shared link.
	tp.must(tp.Net.Veth(tp.A, "atk", c, "cx"))
	tp.must(tp.Net.Addr(tp.A, "atk", "203.0.113.1/24"))
	tp.must(tp.Net.Addr(c, "cx", "203.0.113.66/24"))
	tp.Sh(c, "ip", "route", "add", "192.0.2.0/24", "via", "203.0.113.1")
	tp.Sh(tp.A, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.atk.rp_filter=0")

	tp.Run(tp.A, "ta", "mode", "gre", "remote", UnderB, "local", UnderA)
	tp.Run(tp.B, "tb", "mode", "gre", "remote", UnderA, "local", UnderB)
	sock := rawSocketIn(t, c, unix.IPPROTO_RAW)
	defer unix.Close(sock)
	send := func(p []byte) {
		t.Helper()
		if err := sendRaw(sock, p, UnderA); err != nil {
			t.Fatalf("injecting %d bytes: %v", len(p), err)
		}
	}

	// 59 levels: outer B -> A, then A -> B, B -> A, … (1,440 bytes).
	nested, proto := []byte("keepalive"), uint16(0)
	for level := 59; level >= 1; level-- {
		src, dst := UnderB, UnderA
		if level%2 == 1 {
			src, dst = UnderA, UnderB
		}
		nested, proto = greIPv4(src, dst, 255, proto, nested), 0x0800
	}
	send(greIPv4(UnderB, UnderA, 64, 0x0800, nested))
	// Then one plain probe: its reply reaches B, which has no keepalives
	// and counts it as unsolicited. Once it is there, the nested packet,
	// sent first, has had time to bounce, had it bounced.
	send(probeFor(UnderB, UnderA, 255))
	tp.waitFor("the reflected probe at B", func() bool { return tp.Stats(tp.B, "tb").RxKeepaliveUnsolicited >= 1 })
	sleep(300)
	sa, sb := tp.Stats(tp.A, "ta"), tp.Stats(tp.B, "tb")
	if sa.Reflected != 1 || sb.Reflected != 0 {
		t.Fatalf("A reflected %d, B %d: want 1 and 0 (the probe once, the nested packet never)", sa.Reflected, sb.Reflected)
	}

	// A probe whose inner TTL expires here, and one with a loose source
	// route, are refused and counted.
	send(probeFor(UnderB, UnderA, 1))
	send(probeFor(UnderB, UnderA, 255, 0x83, 3, 4, 0))
	tp.waitFor("refused probes counted", func() bool {
		d := tp.Stats(tp.A, "ta").Drops
		return d["reflect-ttl"] == 1 && d["reflect-header"] == 1
	})
	if s := tp.Stats(tp.A, "ta"); s.Reflected != 1 {
		t.Errorf("refused probes reflected: %d", s.Reflected)
	}
	if out, _ := tp.Gretun(tp.A, "-s", "tunnel", "show", "ta"); !strings.Contains(out, "Keepalives reflected: 1") ||
		!strings.Contains(out, "reflect-header 1") || !strings.Contains(out, "reflect-ttl 1") {
		t.Errorf("-s tunnel show does not show the reflection counters:\n%s", out)
	}
}

// TestKeepaliveNoReflect: keepalives on A only, as in TestKeepaliveOneSide,
// but B's tunnel says `noreflect`: A's probes reach B's host as packets on
// the tunnel device, which the host (not forwarding) drops, so A's line goes
// down; `tunnel change … reflect` on B brings it back. `tunnel show` tells.
func TestKeepaliveNoReflect(t *testing.T) {
	tp := Pair(t)
	tp.Run(tp.A, "spoke", "mode", "gre", "remote", UnderB, "local", UnderA, "keepalive", "0.1", kaRetries)
	tp.Daemon(tp.B)
	tp.add(tp.B, "hub", "mode", "gre", "remote", UnderA, "local", UnderB, "noreflect")
	tp.waitFor("spoke down while the hub does not reflect", func() bool { return !tp.carrier(tp.A, "spoke") })
	s := tp.status(tp.B, "hub")
	if s.Stats.Reflected != 0 || !s.Config.NoReflect || !strings.Contains(s.Line, " noreflect") {
		t.Errorf("hub with noreflect shows %q, config noreflect %v, reflected %d", s.Line, s.Config.NoReflect, s.Stats.Reflected)
	}
	if s.Stats.RxPackets == 0 {
		t.Errorf("the probes did not reach the hub's device: %+v", s.Stats)
	}
	if r := tp.G(tp.B, "tunnel", "change", "hub", "reflect"); r.code != 0 {
		t.Fatalf("tunnel change hub reflect: %+v", r)
	}
	tp.waitFor("spoke up once the hub reflects", func() bool { return tp.carrier(tp.A, "spoke") })
	if s := tp.status(tp.B, "hub"); s.Stats.Reflected == 0 || s.Config.NoReflect || strings.Contains(s.Line, "noreflect") {
		t.Errorf("hub after `reflect` shows %q, reflected %d", s.Line, s.Stats.Reflected)
	}
}
