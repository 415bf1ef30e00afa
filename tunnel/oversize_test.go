package tunnel_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gretun/gretun/header"

	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// TestEngineTinyUnderlayMTU: a route toward the remote with `mtu lock 28`
// (or anything below IPv4's 68) made the fragmenter divide by zero and the
// daemon die with every tunnel. Such an MTU is unusable: packets that do
// not fit it are dropped and counted, and the engine lives on.
func TestEngineTinyUnderlayMTU(t *testing.T) {
	for _, df := range []string{"pmtudisc", "nopmtudisc", "ignore-df"} {
		for _, mtu := range []int{1, 20, 27, 28, 29, 35, 36, 67} {
			w := tunneltest.NewWire()
			a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
			a.host.Underlay = mtu
			mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 1400 "+df)
			mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
			a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 100))
			st := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxErrors > 0 })
			if st.TxErrors != 1 || st.TxTooBig != 1 || st.TxPackets != 0 {
				t.Errorf("%s, underlay MTU %d: tx_errors %d, tx_too_big %d, tx_packets %d; want the packet dropped as too big",
					df, mtu, st.TxErrors, st.TxTooBig, st.TxPackets)
			}
			select {
			case p := <-b.dev("t0").Written:
				t.Errorf("%s, underlay MTU %d: a packet arrived: %x", df, mtu, p)
			default:
			}
		}
	}
}

// udp6 builds an IPv6/UDP packet of n bytes in all.
func udp6(src, dst string, n int) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n-40))
	p[6], p[7] = header.ProtoUDP, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return p
}

// TestEngineTooBigSource: an oversize packet is answered with an ICMP error
// whose source is the packet's destination, IPv6 too, whatever addresses
// the device has (with only link-local ones, IPv6 senders got nothing and
// never learnt the MTU); an IPv6 packet to a group is answered from the
// device's address. The device's addresses are read when they change, not
// for each oversize packet.
func TestEngineTooBigSource(t *testing.T) {
	var lookups atomic.Int64
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.DeviceAddrs = func() (map[string][]netip.Addr, error) {
			lookups.Add(1)
			return map[string][]netip.Addr{"t0": {netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8:ff::1")}}, nil
		}
		env.WatchAddrs = func(ctx context.Context, changed func()) error {
			changed()
			<-ctx.Done()
			return nil
		}
	})
	a.host.Underlay = 1000 // path MTU 976 under the device's 1400
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 1400")
	for deadline := time.Now().Add(5 * time.Second); lookups.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	dev := a.dev("t0")

	df := udp4("198.51.100.1", "203.0.113.1", 1172)
	df[6] = 0x40
	header.IPv4(df).UpdateChecksum()
	for _, c := range []struct {
		name     string
		pkt      []byte
		src, dst string
		mtu      int
	}{
		{"ipv4", df, "203.0.113.1", "198.51.100.1", 976},
		{"ipv6", udp6("2001:db8:2::2", "2001:db8:3::3", 1300), "2001:db8:3::3", "2001:db8:2::2", 1280},
		{"ipv6 link-local", udp6("fe80::2", "fe80::3", 1300), "fe80::3", "fe80::2", 1280},
		{"ipv6 multicast", udp6("2001:db8:2::2", "ff0e::1", 1300), "2001:db8:ff::1", "2001:db8:2::2", 1280},
	} {
		dev.Inject(c.pkt)
		got := receive(t, dev)
		var src, dst netip.Addr
		var mtu int
		if c.pkt[0]>>4 == 4 {
			src, dst = netip.AddrFrom4(header.IPv4(got).Src()), netip.AddrFrom4(header.IPv4(got).Dst())
			mtu = int(binary.BigEndian.Uint16(got[26:]))
		} else {
			src, dst = netip.AddrFrom16(header.IPv6(got).Src()), netip.AddrFrom16(header.IPv6(got).Dst())
			mtu = int(binary.BigEndian.Uint32(got[44:]))
		}
		if src.String() != c.src || dst.String() != c.dst || mtu != c.mtu {
			t.Errorf("%s: ICMP error %s → %s mtu %d, want %s → %s mtu %d", c.name, src, dst, mtu, c.src, c.dst, c.mtu)
		}
	}

	before := lookups.Load()
	for range 200 {
		dev.Inject(df)
	}
	st := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxTooBig >= 204 })
	if st.TxTooBig != 204 || st.TxICMP+st.TxICMPLimited != 204 {
		t.Errorf("tx_too_big %d, tx_icmp %d, tx_icmp_limited %d; want 204 answered or limited", st.TxTooBig, st.TxICMP, st.TxICMPLimited)
	}
	if n := lookups.Load() - before; n != 0 {
		t.Errorf("the device's addresses were read %d times for 200 oversize packets, want 0", n)
	}
}

// TestEngineDefaultDF: with the default pmtudisc every outer packet has DF.
// An IPv4 packet without DF larger than the path is fragmented before it
// is encapsulated, each fragment in its own outer packet; an IPv6 packet of
// at most 1280 bytes over a path narrower than that (which no Packet Too
// Big may lower) goes in outer fragments without DF (RFC 4459 §3.2).
func TestEngineDefaultDF(t *testing.T) {
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	a.host.Underlay = 1200 // path MTU 1176
	mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 mtu 1400")
	peer := w.Open(addrB, header.ProtoGRE)
	read := func() (got [][]byte) {
		t.Helper()
		for len(got) < 2 {
			p := readWire(peer, 5*time.Second)
			if p == nil {
				t.Fatalf("%d outer packets arrived, want 2", len(got))
			}
			got = append(got, p)
		}
		return got
	}

	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 1372)) // 1400 bytes, no DF
	var inner []byte
	for i, o := range read() {
		ip := header.IPv4(o)
		if !ip.DF() || ip.MoreFragments() || ip.FragmentOffset() != 0 || len(o) > 1200 {
			t.Errorf("outer packet %d: flags %#x, %d bytes; want DF, whole, at most 1200", i, ip.FlagsFrag(), len(o))
		}
		in := header.IPv4(o[24:])
		if in.FragmentOffset() != len(inner) {
			t.Errorf("inner fragment %d at offset %d, want %d", i, in.FragmentOffset(), len(inner))
		}
		inner = append(inner, o[24+in.HeaderLen():]...)
	}
	if want := udp4("198.51.100.1", "203.0.113.1", 1372)[20:]; !bytes.Equal(inner, want) {
		t.Errorf("inner fragments carry %d bytes that differ from the packet's %d", len(inner), len(want))
	}

	a.dev("t0").Inject(udp6("2001:db8:2::2", "2001:db8:3::3", 1280))
	total := 0
	for i, o := range read() {
		ip := header.IPv4(o)
		if ip.DF() || ip.FragmentOffset() != total {
			t.Errorf("outer fragment %d: flags %#x, offset %d; want no DF, offset %d", i, ip.FlagsFrag(), ip.FragmentOffset(), total)
		}
		total += len(o) - ip.HeaderLen()
	}
	if total != 4+1280 { // GRE header and the packet
		t.Errorf("outer fragments carry %d bytes, want %d", total, 4+1280)
	}
}
