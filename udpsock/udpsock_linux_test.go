package udpsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"golang.org/x/sys/unix"
)

// outer builds what encap builds for a UDP tunnel: IPv4 (TTL, TOS, DF),
// UDP to dst with checksum field csum (0: none), then payload.
func outer(dst netip.AddrPort, ttl, tos uint8, df bool, csum uint16, payload []byte) []byte {
	p := make([]byte, HeaderLen, HeaderLen+len(payload))
	p = append(p, payload...)
	ip := header.IPv4(p)
	p[0], p[1] = 0x45, tos
	ip.SetTotalLen(len(p))
	if df {
		ip.SetFlagsFrag(header.IPv4FlagDF)
	}
	ip.SetTTL(ttl)
	p[header.IPv4Protocol] = header.ProtoUDP
	src := netip.MustParseAddr("192.0.2.99").As4() // not used: the socket's own
	d := dst.Addr().As4()
	copy(p[header.IPv4Src:], src[:])
	copy(p[header.IPv4Dst:], d[:])
	ip.UpdateChecksum()
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], 9999) // not used either
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	binary.BigEndian.PutUint16(u[6:], csum)
	return p
}

func open(t *testing.T, o Options) *Conn {
	t.Helper()
	c, err := Open(netip.MustParseAddrPort("127.0.0.1:0"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func bufs(n int) ([][]byte, []int) {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, 65600)
	}
	return b, make([]int, n)
}

// readN reads until n packets arrived (or a deadline), rebuilt headers
// and all.
func readN(t *testing.T, c *Conn, n int) [][]byte {
	t.Helper()
	var got [][]byte
	b, sizes := bufs(BatchSize)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Close()
		}
	}()
	defer close(done)
	for len(got) < n {
		k, err := c.ReadBatch(b, sizes)
		if err != nil {
			t.Fatalf("after %d of %d packets: %v", len(got), n, err)
		}
		for i := range k {
			got = append(got, append([]byte(nil), b[i][:sizes[i]]...))
		}
	}
	return got
}

// TestRoundTrip: payloads arrive behind an IPv4 and UDP header rebuilt
// from the sender's address and port, the TTL and TOS it was sent with,
// and this socket's own address and port, for GSO runs (equal sizes, a
// shorter last one), single packets, and with or without UDP checksums
// and DF; with GRO the coalesced datagrams come back one per buffer.
func TestRoundTrip(t *testing.T) {
	for _, o := range []Options{{}, {NoGSO: true, NoGRO: true}, {NoGRO: true}} {
		rx, tx := open(t, o), open(t, o)
		to := rx.LocalAddr()
		var pkts [][]byte
		for i := range 20 {
			pay := bytes.Repeat([]byte{byte(i)}, 1000)
			if i == 9 {
				pay = pay[:300] // ends the first GSO run
			}
			ttl, tos, df, csum := uint8(64), uint8(0x10), true, uint16(1)
			if i >= 15 {
				ttl, tos, df, csum = 7, 0xb8, false, 0 // other options: other messages
			}
			pkts = append(pkts, outer(to, ttl, tos, df, csum, pay))
		}
		if n, err := tx.WriteBatch(pkts); n != len(pkts) || err != nil {
			t.Fatalf("%+v: WriteBatch = %d, %v", o, n, err)
		}
		got := readN(t, rx, len(pkts))
		for i, g := range got {
			want := pkts[i]
			ip := header.IPv4(g)
			u := header.UDP(g[20:])
			if !ip.ChecksumValid() || ip.TotalLen() != len(want) || ip.TTL() != want[8] || ip.TOS() != want[1] ||
				ip.SrcAddr() != tx.LocalAddr().Addr() || ip.DstAddr() != to.Addr() ||
				u.SrcPort() != tx.LocalAddr().Port() || u.DstPort() != to.Port() || u.Length() != len(want)-20 {
				t.Errorf("%+v: packet %d header % x, sent % x", o, i, g[:HeaderLen], want[:HeaderLen])
			}
			if !bytes.Equal(g[HeaderLen:], want[HeaderLen:]) {
				t.Errorf("%+v: packet %d payload differs", o, i)
			}
		}
		if gro := rx.Stats().Coalesced > 0; gro != (rx.GRO() && tx.GSO()) {
			t.Errorf("%+v: coalesced datagrams received: %v; GRO %v, GSO %v", o, gro, rx.GRO(), tx.GSO())
		}
	}
}

// TestMessages: the sender's grouping, which the round trip cannot see:
// one message per run of equal sizes to one destination with one set of
// options, no more than MaxSegments, none with checksums off.
func TestMessages(t *testing.T) {
	c := open(t, Options{})
	if !c.GSO() {
		t.Skip("no UDP_SEGMENT on this kernel")
	}
	a, b := netip.MustParseAddrPort("192.0.2.1:4754"), netip.MustParseAddrPort("192.0.2.2:4754")
	var pkts [][]byte
	add := func(n int, to netip.AddrPort, size int, csum uint16) {
		for range n {
			pkts = append(pkts, outer(to, 64, 0, true, csum, make([]byte, size)))
		}
	}
	add(3, a, 1400, 1) // message 0
	add(1, a, 1000, 1) // still 0: a shorter last segment
	add(2, a, 1000, 1) // 1: after a shorter one
	add(70, b, 100, 1) // 2 and 3: at most 64 a message
	add(2, b, 100, 0)  // 4 and 5: no checksum, no GSO
	add(1, a, 1500, 1) // 6: larger than the run
	add(1, a, 1500, 1) // 6
	c.sys.growWrite(len(pkts))
	m, end := c.sys.messages(pkts)
	wantSegs := []int{4, 2, 64, 6, 1, 1, 2}
	if end != len(pkts) || m != len(wantSegs) {
		t.Fatalf("messages = %d, end %d; want %d, %d", m, end, len(wantSegs), len(pkts))
	}
	for i, w := range wantSegs {
		if c.sys.wsegs[i] != w {
			t.Errorf("message %d carries %d packets, want %d (all %v)", i, c.sys.wsegs[i], w, c.sys.wsegs[:m])
		}
	}
	clear(c.sys.wiovs)
}

// TestWriteErrors: a packet that is not IPv4/UDP stops the batch at its
// index; one the kernel refuses is reported at its index.
func TestWriteErrors(t *testing.T) {
	c := open(t, Options{})
	to := netip.MustParseAddrPort("127.0.0.1:9")
	good := outer(to, 64, 0, true, 1, []byte("x"))
	bad := append([]byte(nil), good...)
	bad[header.IPv4Protocol] = header.ProtoGRE
	n, err := c.WriteBatch([][]byte{good, bad, good})
	if n != 1 || !errors.Is(err, ErrNotUDP) {
		t.Errorf("WriteBatch with a GRE packet second = %d, %v", n, err)
	}
	big := outer(to, 64, 0, true, 1, make([]byte, 66000))
	if n, err := c.WriteBatch([][]byte{good, big}); n != 1 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("WriteBatch with an oversize datagram second = %d, %v", n, err)
	}
	c.Close()
	if _, err := c.WriteBatch([][]byte{good}); err == nil {
		t.Error("WriteBatch after Close succeeded")
	}
}

// TestPortInUse: a bound port is refused with EADDRINUSE.
func TestPortInUse(t *testing.T) {
	c := open(t, Options{})
	if _, err := Open(c.LocalAddr(), Options{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Open of %s: %v", c.LocalAddr(), err)
	}
}

// TestAllocs: a batch each way allocates nothing.
func TestAllocs(t *testing.T) {
	rx, tx := open(t, Options{}), open(t, Options{})
	pkts := make([][]byte, 16)
	for i := range pkts {
		pkts[i] = outer(rx.LocalAddr(), 64, 0, true, 1, make([]byte, 1200))
	}
	b, sizes := bufs(BatchSize)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := tx.WriteBatch(pkts); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(pkts); {
			n, err := rx.ReadBatch(b, sizes)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch each way", allocs)
	}
	// ReadBatchGRO too, keeping coalesced datagrams whole or not.
	segs := make([]int, BatchSize)
	keep := false
	whole := func([]byte, int) bool { keep = !keep; return keep }
	allocs = testing.AllocsPerRun(50, func() {
		if _, err := tx.WriteBatch(pkts); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(pkts); {
			n, err := rx.ReadBatchGRO(b, sizes, segs, whole)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				got++
				if segs[i] != 0 {
					got += (sizes[i]-HeaderLen+segs[i]-1)/segs[i] - 1
				}
			}
		}
	})
	if allocs != 0 {
		t.Errorf("ReadBatchGRO: %.1f allocations per batch each way", allocs)
	}
}

// closedPort is a loopback port nobody listens on (bound, then closed).
func closedPort(t *testing.T) netip.AddrPort {
	c := open(t, Options{})
	ap := c.LocalAddr()
	c.Close()
	return ap
}

// TestErrorsServe: a socket that only sends hears, through ServeErrors,
// that its datagram met a closed port, with the destination and the
// payload it sent.
func TestErrorsServe(t *testing.T) {
	tx := open(t, Options{})
	got := make(chan Error, 4)
	tx.OnError(func(e Error) {
		e.Payload = append([]byte(nil), e.Payload...)
		got <- e
	})
	go tx.ServeErrors()
	to := closedPort(t)
	if _, err := tx.WriteBatch([][]byte{outer(to, 64, 0, true, 1, []byte("GRE!"))}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != Unreachable || e.To != to || string(e.Payload) != "GRE!" {
			t.Errorf("error %+v, want Unreachable to %s quoting GRE!", e, to)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported")
	}
}

// TestErrorsRead: on a socket that is read, the pending error the report
// raises does not reach ReadBatch's caller: the report goes to OnError
// and the datagrams that follow are read as usual.
func TestErrorsRead(t *testing.T) {
	a, b := open(t, Options{}), open(t, Options{})
	var reports []Error
	a.OnError(func(e Error) { reports = append(reports, e) })
	if _, err := a.WriteBatch([][]byte{outer(closedPort(t), 64, 0, true, 1, []byte("x"))}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the ICMP error is in before the datagram
	if _, err := b.WriteBatch([][]byte{outer(a.LocalAddr(), 64, 0, true, 1, []byte("data"))}); err != nil {
		t.Fatal(err)
	}
	got := readN(t, a, 1)
	if string(got[0][HeaderLen:]) != "data" {
		t.Errorf("read % x", got[0])
	}
	if len(reports) != 1 || reports[0].Kind != Unreachable {
		t.Errorf("reports %+v, want one Unreachable", reports)
	}
}

// outer6 is outer over IPv6: an IPv6 header (hop limit, traffic class),
// with limit >= 0 a destination options header carrying that RFC 2473
// encapsulation limit as Linux's IPv6 tunnels send it, UDP to dst.
func outer6(dst netip.AddrPort, hops, tclass uint8, limit int, csum uint16, payload []byte) []byte {
	ext := 0
	if limit >= 0 {
		ext = header.IPv6ExtMinLen
	}
	p := make([]byte, HeaderLen6+ext, HeaderLen6+ext+len(payload))
	p = append(p, payload...)
	next := uint8(header.ProtoUDP)
	if limit >= 0 {
		next = header.IPv6DestOpts
		copy(p[40:], []byte{header.ProtoUDP, 0, header.IPv6OptEncapLimit, 1, byte(limit), header.IPv6OptPadN, 1, 0})
	}
	header.IPv6(p).Encode(&header.IPv6Fields{TrafficClass: tclass, PayloadLen: uint16(len(p) - 40), NextHeader: next, HopLimit: hops,
		Src: netip.MustParseAddr("2001:db8::99"), Dst: dst.Addr()})
	u := p[40+ext:]
	binary.BigEndian.PutUint16(u[0:], 9999)
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	binary.BigEndian.PutUint16(u[6:], csum)
	return p
}

// TestRoundTrip6: the same over IPv6 (loopback): payloads arrive behind a
// rebuilt IPv6 and UDP header with the hop limit and traffic class they
// were sent with, GSO runs coalesced by GRO and split again, with and
// without the encapsulation limit option and UDP checksums.
func TestRoundTrip6(t *testing.T) {
	for _, o := range []Options{{}, {NoGSO: true, NoGRO: true}} {
		open6 := func() *Conn {
			c, err := Open(netip.MustParseAddrPort("[::1]:0"), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		rx, tx := open6(), open6()
		to := rx.LocalAddr()
		var pkts [][]byte
		for i := range 20 {
			pay := bytes.Repeat([]byte{byte(i)}, 1000)
			hops, tclass, limit, csum := uint8(64), uint8(0x10), 4, uint16(1)
			if i >= 8 {
				hops, tclass, limit = 7, 0xb8, -1 // other options: other messages
			}
			if i >= 16 {
				csum = 0
			}
			pkts = append(pkts, outer6(to, hops, tclass, limit, csum, pay))
		}
		if n, err := tx.WriteBatch(pkts); n != len(pkts) || err != nil {
			t.Fatalf("%+v: WriteBatch = %d, %v", o, n, err)
		}
		got := readN(t, rx, len(pkts))
		for i, g := range got {
			want := header.IPv6(pkts[i])
			start := len(pkts[i]) - 1000
			ip := header.IPv6(g)
			u := header.UDP(g[40:])
			if !ip.IsValid() || ip.NextHeader() != header.ProtoUDP || ip.PayloadLen() != 8+1000 || ip.HopLimit() != want.HopLimit() ||
				ip.TrafficClass() != want.TrafficClass() || ip.SrcAddr() != tx.LocalAddr().Addr() || ip.DstAddr() != to.Addr() ||
				u.SrcPort() != tx.LocalAddr().Port() || u.DstPort() != to.Port() || u.Length() != 8+1000 {
				t.Errorf("%+v: packet %d header % x, sent % x", o, i, g[:HeaderLen6], pkts[i][:start])
			}
			if !bytes.Equal(g[HeaderLen6:], pkts[i][start:]) {
				t.Errorf("%+v: packet %d payload differs", o, i)
			}
		}
		if gro := rx.Stats().Coalesced > 0; gro != (rx.GRO() && tx.GSO()) {
			t.Errorf("%+v: coalesced datagrams received: %v; GRO %v, GSO %v", o, gro, rx.GRO(), tx.GSO())
		}
		// An IPv4 packet is not this socket's.
		if n, err := tx.WriteBatch([][]byte{outer(netip.MustParseAddrPort("127.0.0.1:9"), 64, 0, true, 1, []byte{1})}); n != 0 || !errors.Is(err, ErrNotUDP) {
			t.Errorf("IPv4 packet on an IPv6 socket: %d, %v", n, err)
		}
	}
}

// TestEncapLimitFillsPath: a datagram behind the encapsulation limit
// option (IPV6_DSTOPTS) that fills the path MTU exactly is sent, and one
// byte more is refused with EMSGSIZE. Linux counts the option twice when
// it sizes a plain datagram, so without GSO the full-size one is refused
// and gretun's MTU would be 8 bytes below the kernel's ip6gre's.
func TestEncapLimitFillsPath(t *testing.T) {
	const mtu = 1500
	open6 := func(o Options) *Conn {
		c, err := Open(netip.MustParseAddrPort("[::1]:0"), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rx, tx := open6(Options{NoGRO: true}), open6(Options{})
	if !tx.GSO() {
		t.Skip("no UDP_SEGMENT on this kernel")
	}
	// The loopback's MTU is 64 KiB: IPV6_MTU caps this socket's path.
	var serr error
	if err := tx.sys.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU, mtu) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	room := mtu - HeaderLen6 - header.IPv6ExtMinLen
	full := outer6(rx.LocalAddr(), 64, 0, 4, 1, bytes.Repeat([]byte{7}, room))
	if n, err := tx.WriteBatch([][]byte{full}); n != 1 || err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skip("IPV6_DSTOPTS needs CAP_NET_RAW")
		}
		t.Fatalf("a %d-byte packet with the encapsulation limit on a %d-byte path: WriteBatch = %d, %v", len(full), mtu, n, err)
	}
	if g := readN(t, rx, 1)[0]; !bytes.Equal(g[HeaderLen6:], full[HeaderLen6+header.IPv6ExtMinLen:]) {
		t.Errorf("the full-size datagram arrived changed")
	}
	over := outer6(rx.LocalAddr(), 64, 0, 4, 1, bytes.Repeat([]byte{7}, room+1))
	if n, err := tx.WriteBatch([][]byte{over}); n != 0 || !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("one byte over the path: WriteBatch = %d, %v; want 0 and EMSGSIZE", n, err)
	}
}

// TestEIODisablesGSO: a send that fails with EIO (a device on the way
// cannot checksum, which UDP_SEGMENT needs) turns GSO off for good and is
// retried once, one datagram a message, and every packet arrives; a later
// EIO, GSO being off already, is returned as the error it is. The EIO is
// injected in place of the first sendmmsg.
func TestEIODisablesGSO(t *testing.T) {
	rx, tx := open(t, Options{NoGRO: true}), open(t, Options{})
	if !tx.GSO() {
		t.Skip("no UDP_SEGMENT on this kernel")
	}
	var calls, messages int
	failNext := true
	tx.sys.wfn = func(fd uintptr) bool {
		calls++
		if failNext {
			failNext = false
			tx.sys.wn, tx.sys.werr = 0, syscall.EIO
			return true
		}
		messages += tx.sys.wreq
		return tx.sys.sendmmsg(fd)
	}
	var pkts [][]byte
	for i := range 10 {
		pkts = append(pkts, outer(rx.LocalAddr(), 64, 0, true, 1, bytes.Repeat([]byte{byte(i)}, 1000)))
	}
	if n, err := tx.WriteBatch(pkts); n != len(pkts) || err != nil {
		t.Fatalf("WriteBatch after an EIO = %d, %v; want %d, nil", n, err, len(pkts))
	}
	if tx.GSO() || calls != 2 || messages != len(pkts) {
		t.Errorf("GSO %v after EIO, %d sendmmsg calls, %d messages; want false, 2 (the failed one and the retry), %d (one per packet)",
			tx.GSO(), calls, messages, len(pkts))
	}
	for i, g := range readN(t, rx, len(pkts)) {
		if !bytes.Equal(g[HeaderLen:], pkts[i][HeaderLen:]) {
			t.Errorf("packet %d differs", i)
		}
	}
	failNext = true
	if n, err := tx.WriteBatch(pkts[:1]); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Errorf("a second EIO: WriteBatch = %d, %v; want 0 and EIO, not retried", n, err)
	}
}

// TestStepsTurnOffloadsOff: udpsock.Steps (gretun bench's step rows) turns
// GSO and GRO off for every socket opened afterwards.
func TestStepsTurnOffloadsOff(t *testing.T) {
	if c := open(t, Options{}); !c.GSO() || !c.GRO() {
		t.Skip("no UDP GSO/GRO on this kernel")
	}
	Steps = Options{NoGSO: true, NoGRO: true}
	t.Cleanup(func() { Steps = Options{} })
	if c := open(t, Options{}); c.GSO() || c.GRO() {
		t.Fatalf("with Steps off: GSO %v, GRO %v; want both off", c.GSO(), c.GRO())
	}
}

// TestReceiveBuffer: with CAP_NET_ADMIN the socket gets its 16 MiB receive
// buffer (the kernel reports twice what was asked, its bookkeeping), room
// for the GRO datagrams of several TCP streams.
func TestReceiveBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs CAP_NET_ADMIN (run as root)")
	}
	c := open(t, Options{})
	var got int
	var gerr error
	if err := c.sys.rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got < 2*(16<<20) {
		t.Fatalf("SO_RCVBUF %d, want at least 2 × 16 MiB", got)
	}
}

// TestReadBatchGRO: a coalesced datagram comes back whole (its segments
// in order in one buffer, the segment size in segs) when whole says so,
// else split as ReadBatch splits it; whole sees the header rebuilt for
// the first segment. Datagrams that were not coalesced are never offered.
func TestReadBatchGRO(t *testing.T) {
	rx, tx := open(t, Options{}), open(t, Options{})
	if !rx.GRO() || !tx.GSO() {
		t.Skip("no UDP GSO/GRO on this kernel")
	}
	to := rx.LocalAddr()
	for _, keep := range []bool{true, false} {
		var pkts [][]byte
		var payload []byte
		for i := range 5 {
			pay := bytes.Repeat([]byte{byte(i + 1)}, 1000)
			if i == 4 {
				pay = pay[:300]
			}
			payload = append(payload, pay...)
			pkts = append(pkts, outer(to, 64, 0, true, 1, pay))
		}
		single := outer(to, 64, 0, true, 1, []byte("alone"))
		if n, err := tx.WriteBatch(pkts); n != len(pkts) || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		if n, err := tx.WriteBatch([][]byte{single}); n != 1 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		b, sizes := bufs(BatchSize)
		segs := make([]int, BatchSize)
		asked := 0
		whole := func(pkt []byte, seg int) bool {
			asked++
			if seg != 1000 || len(pkt) != HeaderLen+len(payload) || header.IPv4(pkt).TotalLen() != HeaderLen+seg {
				t.Errorf("whole asked with %d bytes, seg %d, header total %d", len(pkt), seg, header.IPv4(pkt).TotalLen())
			}
			return keep
		}
		var got [][]byte
		var gotSegs []int
		for len(got) < 2 && (keep || len(got) < 6) {
			n, err := rx.ReadBatchGRO(b, sizes, segs, whole)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				got = append(got, append([]byte(nil), b[i][:sizes[i]]...))
				gotSegs = append(gotSegs, segs[i])
			}
		}
		if asked != 1 {
			t.Errorf("keep %v: whole asked %d times, want once", keep, asked)
		}
		if keep {
			if len(got) != 2 || gotSegs[0] != 1000 || !bytes.Equal(got[0][HeaderLen:], payload) || gotSegs[1] != 0 || !bytes.Equal(got[1], single) && !bytes.Equal(got[1][HeaderLen:], single[HeaderLen:]) {
				t.Fatalf("kept whole: %d packets, segs %v", len(got), gotSegs)
			}
			continue
		}
		if len(got) != 6 {
			t.Fatalf("split: %d packets, want 6", len(got))
		}
		for i, g := range got[:5] {
			if gotSegs[i] != 0 || !bytes.Equal(g[HeaderLen:], pkts[i][HeaderLen:]) {
				t.Errorf("split: segment %d differs (seg %d)", i, gotSegs[i])
			}
		}
	}
}
