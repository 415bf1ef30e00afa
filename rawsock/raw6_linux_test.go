package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
)

var (
	v6A = netip.MustParseAddr("2001:db8::1")
	v6B = netip.MustParseAddr("2001:db8::2")
)

// open6In opens a Conn6 for proto inside ns, closed when t ends.
func open6In(t testing.TB, ns string, proto int) *Conn6 {
	t.Helper()
	var c *Conn6
	err := testnet.InNS(ns, func() (err error) {
		c, err = Open6(proto)
		return err
	})
	if err != nil {
		t.Fatalf("Open6(%d) in %s: %v", proto, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newPair6 is newPair with 2001:db8::1 and ::2 on the veth too.
func newPair6(t testing.TB) (a, b string) {
	t.Helper()
	n, a, b := newPair(t, "1500")
	for _, s := range []struct{ ns, dev, cidr string }{{a, "ua", "2001:db8::1/64"}, {b, "ub", "2001:db8::2/64"}} {
		if err := n.Addr(s.ns, s.dev, s.cidr); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// outer6 is an IPv6 packet from a to b with the given traffic class and
// next header, an encapsulation limit option of 4 first when limit is
// set, as Linux's ip6gre sends it, and body.
func outer6(tclass, proto uint8, limit bool, body []byte) []byte {
	var ext []byte
	next := proto
	if limit {
		ext = []byte{proto, 0, header.IPv6OptEncapLimit, 1, 4, header.IPv6OptPadN, 1, 0}
		next = header.IPv6DestOpts
	}
	p := make([]byte, header.IPv6HeaderLen, header.IPv6HeaderLen+len(ext)+len(body))
	header.IPv6(p).Encode(&header.IPv6Fields{TrafficClass: tclass, FlowLabel: 0x12345, PayloadLen: uint16(len(ext) + len(body)),
		NextHeader: next, HopLimit: 64, Src: v6A, Dst: v6B})
	return append(append(p, ext...), body...)
}

// delivered is what ReadBatch gives for a packet outer6 built: the fixed
// header without flow label and hop limit, straight followed by body.
func delivered(tclass, proto uint8, body []byte) []byte {
	p := make([]byte, header.IPv6HeaderLen, header.IPv6HeaderLen+len(body))
	header.IPv6(p).Encode(&header.IPv6Fields{TrafficClass: tclass, PayloadLen: uint16(len(body)), NextHeader: proto, Src: v6A, Dst: v6B})
	return append(p, body...)
}

// TestConn6RoundTrip sends IPv6 tunnel packets with IPV6_HDRINCL, with and
// without the encapsulation limit option, and reads them back on the far
// side with their fixed header rebuilt from the message: source, the
// destination from IPV6_PKTINFO, the traffic class from IPV6_TCLASS, the
// payload straight after it.
func TestConn6RoundTrip(t *testing.T) {
	a, b := newPair6(t)
	for _, proto := range []int{ProtoGRE, ProtoIPv6, ProtoIPIP} {
		t.Run(fmt.Sprint(proto), func(t *testing.T) {
			tx := open6In(t, a, proto)
			rx := open6In(t, b, proto)
			var pkts, want [][]byte
			for i := range 40 {
				body := greBody(uint32(i), i, 100+i*30)
				tclass := uint8(i) << 2
				pkts = append(pkts, outer6(tclass, uint8(proto), i%2 == 0, body))
				want = append(want, delivered(tclass, uint8(proto), body))
			}
			if n, err := tx.WriteBatch(pkts); n != len(pkts) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got, err := read6N(t, rx, len(want))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("received packets differ (-want +got):\n%s", diff)
			}
		})
	}
}

// read6N reads until want packets arrived, failing after 5 s.
func read6N(t *testing.T, c *Conn6, want int) ([][]byte, error) {
	timer := time.AfterFunc(5*time.Second, func() { c.Close() })
	defer timer.Stop()
	bufs, sizes := newBufs(16, 65535+header.IPv6HeaderLen)
	var got [][]byte
	for len(got) < want {
		n, err := c.ReadBatch(bufs, sizes)
		if err != nil {
			return got, fmt.Errorf("after %d packets: %w", len(got), err)
		}
		for i := range n {
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
	}
	return got, nil
}

// TestConn6Errors: a packet that is not IPv6 is refused at its index, and
// one larger than the device MTU fails with EMSGSIZE, never fragmented.
func TestConn6Errors(t *testing.T) {
	a, _ := newPair6(t)
	tx := open6In(t, a, ProtoGRE)
	ok := outer6(0, ProtoGRE, true, greBody(1, 1, 100))
	n, err := tx.WriteBatch([][]byte{ok, ok, []byte{0x45, 0}})
	if n != 2 || !errors.Is(err, ErrNotIPv6) {
		t.Errorf("WriteBatch with an IPv4 packet third = %d, %v; want 2, ErrNotIPv6", n, err)
	}
	big := outer6(0, ProtoGRE, true, greBody(1, 1, 1500))
	if n, err := tx.WriteBatch([][]byte{ok, big}); n != 1 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("WriteBatch with an oversize packet second = %d, %v; want 1, EMSGSIZE", n, err)
	}
}

// TestConn6Allocs: neither direction allocates.
func TestConn6Allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	a, b := newPair6(t)
	tx := open6In(t, a, ProtoGRE)
	rx := open6In(t, b, ProtoGRE)
	const batch = 32
	var pkts [][]byte
	for i := range batch {
		pkts = append(pkts, outer6(0, ProtoGRE, true, greBody(1, i, 200)))
	}
	bufs, sizes := newBufs(batch, 2048)
	var failed error
	n := testing.AllocsPerRun(20, func() {
		if n, err := tx.WriteBatch(pkts); n != batch || err != nil {
			failed = fmt.Errorf("WriteBatch = %d, %v", n, err)
			return
		}
		for got := 0; got < batch; {
			n, err := rx.ReadBatch(bufs[:batch-got], sizes)
			if err != nil {
				failed = err
				return
			}
			got += n
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if n != 0 {
		t.Errorf("a batch round trip allocates %.1f times, want 0", n)
	}
}

// TestCompleteChecksumSideChannel6: an ip6gre packet as a Linux sender on
// this host leaves it (encapsulation limit option, GRE checksum unfilled
// for a NIC) reaches the Conn6 without the option; CompleteChecksum finds
// its record and fills the checksum in, and leaves alone the same bytes
// sent unmarked.
func TestCompleteChecksumSideChannel6(t *testing.T) {
	a, b := newPair6(t)
	tx := open6In(t, a, ProtoGRE)
	rx := open6In(t, b, ProtoGRE)
	if err := rx.OffloadErr(); err != nil {
		t.Fatal(err)
	}
	dst, err := testnet.MAC(b, "ub")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := testnet.NewPartialSender(a, "ua", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	gre := csumGRE(7)[greAt:] // GRE with a correct checksum and an inner UDP datagram
	good := outer6(0, ProtoGRE, true, gre)
	left := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(left[48+4:], 0) // the GRE checksum, left to the NIC
	if err := ps.Send(left, 48, 4); err != nil {
		t.Fatal(err)
	}
	if n, err := tx.WriteBatch([][]byte{left}); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	got, err := read6N(t, rx, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := delivered(0, ProtoGRE, gre)
	for i, p := range got {
		marked := i == 0
		before := append([]byte(nil), p...)
		if ok := rx.CompleteChecksum(p); ok != marked {
			t.Errorf("packet %d (marked %v): CompleteChecksum = %v", i, marked, ok)
		}
		switch {
		case marked && string(p) != string(want):
			t.Errorf("completed to\n% x\nwant\n% x", p, want)
		case !marked && string(p) != string(before):
			t.Errorf("unmarked packet changed")
		}
	}
}
