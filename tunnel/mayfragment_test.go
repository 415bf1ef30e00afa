package tunnel

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
)

// oversize returns a buffer with an IPv4 DF packet of 1200 bytes at
// innerOffset, and 0xaa in front of it.
func oversize() []byte {
	buf := bytes.Repeat([]byte{0xaa}, innerOffset+1200)
	inner := buf[innerOffset:]
	clear(inner[:20])
	inner[0] = 0x45
	binary.BigEndian.PutUint16(inner[2:], uint16(len(inner)))
	inner[6], inner[8], inner[9] = 0x40, 64, header.ProtoUDP
	copy(inner[12:], []byte{198, 51, 100, 1, 203, 0, 113, 1})
	return buf
}

// TestMayFragmentLimitFirst: once the ICMP rate limit is spent, an
// oversize packet is dropped and counted before any work on an answer:
// nothing is built in front of it and nothing is queued for the device.
func TestMayFragmentLimitFirst(t *testing.T) {
	var tun Tunnel
	tun.icmpRate.SetLimit(time.Hour, 1)
	now := time.Now()
	first := oversize()
	if tun.mayFragment(first, first[innerOffset:], 1000, now) || len(tun.icmpOut) != 1 {
		t.Fatalf("the first oversize DF packet: not answered (%d errors queued)", len(tun.icmpOut))
	}
	buf := oversize()
	orig := append([]byte(nil), buf...)
	if tun.mayFragment(buf, buf[innerOffset:], 1000, now) {
		t.Fatal("an oversize DF packet may not go on")
	}
	if !bytes.Equal(buf, orig) {
		t.Error("a rate-limited packet had an answer built in front of it")
	}
	if len(tun.icmpOut) != 1 {
		t.Errorf("%d errors queued, want only the first", len(tun.icmpOut))
	}
	if c := tun.counters.snapshot(); c.TxICMPLimited != 1 || c.TxTooBig != 2 || c.TxICMP != 1 {
		t.Errorf("tx_icmp_limited %d, tx_too_big %d, tx_icmp %d; want 1, 2, 1", c.TxICMPLimited, c.TxTooBig, c.TxICMP)
	}
	if n := testing.AllocsPerRun(100, func() { tun.mayFragment(buf, buf[innerOffset:], 1000, now) }); n != 0 {
		t.Errorf("%v allocations per rate-limited packet", n)
	}
}

// BenchmarkOversize is the cost of answering one oversize packet, the
// rate limit off: building the ICMP error, and once, before the address
// cache, two netlink dumps for its source address.
func BenchmarkOversize(b *testing.B) {
	var tun Tunnel
	tun.name = "gt-bench0"
	tun.cfg.Store(&config.Tunnel{Local: netip.MustParseAddr("192.0.2.1")})
	tun.icmpRate.SetLimit(0, 0)
	buf := oversize()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tun.mayFragment(buf, buf[innerOffset:], 1000, now)
		tun.icmpOut = tun.icmpOut[:0]
	}
}
