package pmtu

import (
	"testing"
	"time"
)

// Everything here sits on the per-packet path: none of it may allocate.
func TestAllocs(t *testing.T) {
	in4, in6 := udp4(t, 1500, true), udp6(t, 1500)
	icmpErr := append([]byte(nil), in4...)
	icmpErr[9], icmpErr[20] = 1, 3
	syn4 := syn(t, false, false, 0, oMSS1460, oSACKOK, oTS, oNOP, oWS)
	syn6 := synAfterHopByHop(t)
	dst := make([]byte, MaxLen6)
	var l Limiter
	var s State
	s.SetDevice(1476, 24)
	now := t0
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"TooBig ipv4", func() { TooBig(dst, in4, 1476, tunnel4) }},
		{"TooBig ipv6", func() { TooBig(dst, in6, 1400, tunnel6) }},
		{"TooBig refusal", func() { TooBig(dst, icmpErr, 1476, tunnel4) }},
		{"Limiter.Allow", func() { now = now.Add(time.Microsecond); l.Allow(now) }},
		{"State.Lower", func() { now = now.Add(time.Microsecond); s.Lower(now, 1400) }},
		{"State.Effective", func() { s.Effective(now) }},
		{"ClampMSS ipv4", func() { ClampMSS(syn4, 1436) }},
		{"ClampMSS ipv6", func() { ClampMSS(syn6, 1220) }},
		{"MSSFor", func() { MSSFor(1476, true) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tc.name, n)
		}
	}
}

func BenchmarkTooBig4(b *testing.B) {
	inner, dst := udp4(b, 1500, true), make([]byte, MaxLen4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TooBig(dst, inner, 1476, tunnel4); err != nil {
			b.Fatal(err)
		}
	}
}

// The IPv6 error quotes 1232 bytes: mostly checksum work.
func BenchmarkTooBig6(b *testing.B) {
	inner, dst := udp6(b, 1500), make([]byte, MaxLen6)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TooBig(dst, inner, 1400, tunnel6); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClampMSS(b *testing.B) {
	pkt := syn(b, false, false, 0, oMSS1460, oSACKOK, oTS, oNOP, oWS)
	orig := append([]byte(nil), pkt...)
	b.ReportAllocs()
	for b.Loop() {
		copy(pkt, orig)
		if !ClampMSS(pkt, 1436) {
			b.Fatal("not clamped")
		}
	}
}

// What every non-SYN TCP packet pays when clamping is on.
func BenchmarkClampMSSNotSYN(b *testing.B) {
	pkt := syn(b, false, true, 1400, oMSS1460)
	pkt[20+13] = 0x10
	b.ReportAllocs()
	for b.Loop() {
		ClampMSS(pkt, 1436)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	var l Limiter
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		l.Allow(now)
	}
}

func BenchmarkStateEffective(b *testing.B) {
	var s State
	s.SetDevice(1476, 24)
	s.Lower(t0, 1400)
	b.ReportAllocs()
	for b.Loop() {
		s.Effective(t0)
	}
}
