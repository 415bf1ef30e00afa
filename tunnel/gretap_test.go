package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testpkt"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// ethFrame is an Ethernet frame 02:..:01 -> 02:..:02 of type etype around
// payload.
func ethFrame(etype uint16, payload []byte) []byte {
	f := make([]byte, header.EthernetHeaderLen, header.EthernetHeaderLen+len(payload))
	header.Ethernet(f).Encode([]byte{2, 0, 0, 0, 0, 2}, []byte{2, 0, 0, 0, 0, 1}, etype)
	return append(f, payload...)
}

// vlanFrame is ethFrame with an 802.1Q tag of VLAN vid in front of etype.
func vlanFrame(vid uint16, etype uint16, payload []byte) []byte {
	tag := make([]byte, 4)
	binary.BigEndian.PutUint16(tag, vid)
	binary.BigEndian.PutUint16(tag[2:], etype)
	return ethFrame(0x8100, append(tag, payload...))
}

// gretapPair runs gretap tunnels t0 with the options on two fake hosts.
func gretapPair(t *testing.T, opts string) (a, b *side) {
	t.Helper()
	w := tunneltest.NewWire()
	a, b = newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gretap remote 192.0.2.2 local 192.0.2.1 "+opts)
	mustAdd(t, b, "t0", "mode gretap remote 192.0.2.1 local 192.0.2.2 "+opts)
	return a, b
}

// TestGretapCarriesFrames: a gretap tunnel carries whole Ethernet frames
// byte for byte over TAP devices: ARP, IPv4, VLAN-tagged frames and the
// largest frames the path takes, untagged and tagged, on a device whose
// MTU is the underlay less 38 (1462 on 1500), as Linux's gretap; inside
// UDP (encap fou) too, 8 bytes less.
func TestGretapCarriesFrames(t *testing.T) {
	for _, c := range []struct {
		opts string
		mtu  int
	}{{"", 1462}, {"key 7 csum seq", 1450}, {"encap fou", 1454}, {"key 7 csum seq encap fou encap-dport 6000", 1442}} {
		opts := c.opts
		t.Run(opts, func(t *testing.T) {
			a, b := gretapPair(t, opts)
			st, _ := a.e.Show("t0")
			want := c.mtu
			if st[0].MTU != want {
				t.Errorf("MTU %d, want %d", st[0].MTU, want)
			}
			if p := a.dev("t0").Payload(); p != tunnel.PayloadEthernet {
				t.Fatalf("device payload %v, want Ethernet", p)
			}
			frames := [][]byte{
				testpkt.Frame,
				ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", 100)),
				vlanFrame(42, header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", 200)),
				ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", want-28)),
				vlanFrame(42, header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", want-28-4)),
			}
			for i, f := range frames {
				a.dev("t0").Inject(f)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, f) {
					t.Fatalf("frame %d changed in transit:\n got %x\nwant %x", i, got, f)
				}
			}
			s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == uint64(len(frames)) })
			if s.RxErrors != 0 {
				t.Errorf("receive errors: %+v", s.Drops)
			}
		})
	}
}

// TestGretapPayloadMismatch: IP on a gretap tunnel and Ethernet on a gre
// tunnel with the same endpoints (a misconfigured peer) are dropped and
// counted, never written to the device.
func TestGretapPayloadMismatch(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gre key 3 seq remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gretap key 3 seq remote 192.0.2.1 local 192.0.2.2")
	a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 100))
	sb := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxErrors == 1 })
	if sb.Drops["not-ethernet"] != 1 || sb.RxPackets != 0 {
		t.Errorf("IP on gretap: %+v", sb)
	}
	b.dev("t0").Inject(testpkt.Frame)
	sa := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.RxErrors == 1 })
	if sa.Drops["ethernet-on-l3"] != 1 || sa.RxPackets != 0 || sa.RxOutOfSeq != 0 {
		t.Errorf("Ethernet on gre: %+v", sa)
	}
	// A refused packet advanced no sequence number: the next one of
	// the right kind is taken.
	b.dev("t0").Inject(testpkt.Frame)
	for _, d := range []*tunneltest.Device{a.dev("t0"), b.dev("t0")} {
		select {
		case p := <-d.Written:
			t.Errorf("a mismatched packet reached a device: %x", p)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestGretapTooBig: a frame whose payload is over the path MTU is dropped
// and counted with the default pmtudisc, without an ICMP error (a bridge
// sends none); with nopmtudisc its outer packet is fragmented.
func TestGretapTooBig(t *testing.T) {
	for _, df := range []string{"pmtudisc", "nopmtudisc"} {
		t.Run(df, func(t *testing.T) {
			a, b := gretapPair(t, "mtu 1500 "+df)
			big := ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", 1500-28))
			a.dev("t0").Inject(big)
			st := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxPackets+s.TxErrors == 1 })
			switch df {
			case "pmtudisc":
				if st.TxTooBig != 1 || st.TxErrors != 1 || st.TxICMP != 0 || st.TxFragmented != 0 {
					t.Errorf("counters %+v, want one too-big drop and no ICMP", st)
				}
				select {
				case p := <-a.dev("t0").Written:
					t.Errorf("the sending device got a packet (ICMP?): %x", p)
				case p := <-b.dev("t0").Written:
					t.Errorf("an oversize frame arrived: %d bytes", len(p))
				case <-time.After(50 * time.Millisecond):
				}
			case "nopmtudisc":
				if st.TxFragmented != 2 || st.TxPackets != 1 {
					t.Errorf("counters %+v, want the outer packet in two fragments", st)
				}
			}
		})
	}
}

// TestGretapConfig: gretap takes gre's options, refuses those that need an
// inner IP header, and cannot become another mode in place.
func TestGretapConfig(t *testing.T) {
	base := "mode gretap remote 192.0.2.2 local 192.0.2.1 "
	for _, ok := range []string{"key 7 csum seq keepalive 10 3", "ttl 64 tos 0x10", "nopmtudisc ttl inherit", "underlay packet"} {
		c, err := config.Parse("tap0", strings.Fields(base+ok))
		if err != nil {
			t.Errorf("%q: %v", ok, err)
			continue
		}
		line := c.String()
		words := append([]string{"mode", "gretap"}, strings.Fields(strings.TrimPrefix(line, "tap0: gretap/ip"))...)
		if got, err := config.Parse("tap0", words); err != nil || got != c {
			t.Errorf("%q does not parse back: %v %+v", line, err, got)
		}
		if !strings.HasPrefix(c.String(), "tap0: gretap/ip remote") {
			t.Errorf("show: %q", c.String())
		}
	}
	for _, bad := range []string{"tos inherit", "tos 0x11", "clamp-mss"} {
		_, err := config.Parse("tap0", strings.Fields(base+bad))
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "gretap") {
			t.Errorf("%q: %v, want a one-line error naming gretap", bad, err)
		}
	}
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8)
	mustAdd(t, a, "tap0", base)
	c, _ := config.Parse("tap0", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1"))
	if err := a.e.Change(c); err == nil || !strings.Contains(err.Error(), "cannot change mode") {
		t.Errorf("change from gretap to gre: %v", err)
	}
	// A gre tunnel with a gretap tunnel's endpoints and key is refused:
	// packets are told apart by endpoints and key only.
	c.Name = "gre0"
	if err := a.e.Add(c); err == nil {
		t.Errorf("a gre tunnel beside a gretap one with the same endpoints was accepted")
	}
}

// TestGretapLearnsPathMTU: an ICMP Fragmentation Needed quoting a gretap
// tunnel's packet (GRE 0x6558 with its key) lowers its path MTU, and a
// gre tunnel's quote does not; a frame that fits the underlay but no
// longer the path is then dropped and counted with the default pmtudisc.
func TestGretapLearnsPathMTU(t *testing.T) {
	feed := newICMPFeed()
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenICMP = func() (tunnel.ICMPSource, error) { return feed, nil }
	})
	b := newSide(t, w, addrB, 8)
	mustAdd(t, a, "t0", "mode gretap key 12 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, b, "t0", "mode gretap key 12 remote 192.0.2.1 local 192.0.2.2")
	local, remote := addrA.As4(), addrB.As4()
	quote := func(proto uint16) []byte {
		q := greQuote(header.GREFlagKey, 12)
		binary.BigEndian.PutUint16(q[2:], proto)
		return q
	}
	feed.msgs <- fragNeeded(1300, local, remote, header.ProtoGRE, quote(header.EtherTypeIPv6)) // a gre tunnel's
	feed.msgs <- fragNeeded(1400, local, remote, header.ProtoGRE, quote(header.EtherTypeTEB))
	want := 1400 - 38 - 4
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, _ := a.e.Show("t0"); st[0].PathMTU != 1500-42 {
			break
		}
	}
	st, _ := a.e.Show("t0")
	if st[0].PathMTU != want || st[0].MTU != 1500-42 {
		t.Fatalf("path MTU %d, MTU %d; want %d, %d", st[0].PathMTU, st[0].MTU, want, 1500-42)
	}
	a.dev("t0").Inject(ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", want+1-28)))
	a.dev("t0").Inject(ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", want-28)))
	s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxPackets+s.TxErrors == 2 })
	if s.TxTooBig != 1 || s.TxPackets != 1 {
		t.Errorf("tx_too_big %d, tx_packets %d; want the frame over the path dropped, the other sent", s.TxTooBig, s.TxPackets)
	}
	if got := receive(t, b.dev("t0")); len(got) != want+14 {
		t.Errorf("a %d-byte frame arrived, want %d", len(got), want+14)
	}
}

// TestIP6GretapCarriesFrames: ip6gretap is gretap over the IPv6 underlay:
// frames cross byte for byte, and the MTU leaves room for the IPv6 header,
// Linux's default encapsulation limit, GRE and the Ethernet header (1434
// on 1500, as Linux's ip6gretap).
func TestIP6GretapCarriesFrames(t *testing.T) {
	w := tunneltest.NewWire()
	a, b := newSide(t, w, addr6A, 8), newSide(t, w, addr6B, 8)
	mustAdd(t, a, "t0", "mode ip6gretap key 9 remote 2001:db8::2 local 2001:db8::1")
	mustAdd(t, b, "t0", "mode ip6gretap key 9 remote 2001:db8::1 local 2001:db8::2")
	st, _ := a.e.Show("t0")
	if want := 1500 - 40 - 8 - 4 - 4 - 14; st[0].MTU != want {
		t.Errorf("MTU %d, want %d", st[0].MTU, want)
	}
	for i, f := range [][]byte{
		testpkt.Frame,
		vlanFrame(42, header.EtherTypeIPv6, udp6("2001:db8:1::1", "2001:db8:1::2", 300)),
		ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", st[0].MTU-28)),
	} {
		a.dev("t0").Inject(f)
		if got := receive(t, b.dev("t0")); !bytes.Equal(got, f) {
			t.Fatalf("frame %d changed in transit:\n got %x\nwant %x", i, got, f)
		}
	}
	a.dev("t0").Inject(ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", st[0].MTU-27)))
	if s := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxErrors == 1 }); s.TxTooBig != 1 || s.TxICMP != 0 {
		t.Errorf("a frame over the path: %+v, want dropped as too big without ICMP", s)
	}
}

// TestGretapFOU: gretap and ip6gretap inside UDP (encap fou) carry frames
// both ways, and keepalives on A only come back through B's reflection,
// inside UDP, over either family.
func TestGretapFOU(t *testing.T) {
	for _, c := range []struct {
		mode         string
		addrA, addrB string
	}{{"gretap", "192.0.2.1", "192.0.2.2"}, {"ip6gretap", "2001:db8::1", "2001:db8::2"}} {
		t.Run(c.mode, func(t *testing.T) {
			w := tunneltest.NewWire()
			a := newSide(t, w, netip.MustParseAddr(c.addrA), 8)
			b := newSide(t, w, netip.MustParseAddr(c.addrB), 8)
			words := "mode " + c.mode + " key 7 encap fou "
			mustAdd(t, a, "t0", words+"remote "+c.addrB+" local "+c.addrA+" keepalive 50ms 5")
			mustAdd(t, b, "t0", words+"remote "+c.addrA+" local "+c.addrB)
			for _, f := range [][]byte{testpkt.Frame, ethFrame(header.EtherTypeIPv4, udp4("198.51.100.1", "198.51.100.2", 300))} {
				a.dev("t0").Inject(f)
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, f) {
					t.Fatalf("frame changed in transit:\n got %x\nwant %x", got, f)
				}
				b.dev("t0").Inject(f)
				if got := receive(t, a.dev("t0")); !bytes.Equal(got, f) {
					t.Fatalf("frame changed on the way back")
				}
			}
			waitFor(t, "5 keepalive replies", func() bool {
				st, _ := a.e.Show("t0")
				ka := st[0].Keepalive
				return ka != nil && ka.Received >= 5 && ka.State == "up"
			})
			if s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.Reflected >= 5 }); s.Reflected < 5 || s.RxErrors != 0 {
				t.Errorf("B reflected %d probes, %d receive errors", s.Reflected, s.RxErrors)
			}
		})
	}
}
