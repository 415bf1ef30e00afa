package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/gostack"
)

var (
	addrA = [4]byte{192, 0, 2, 1}
	addrB = [4]byte{192, 0, 2, 2}
)

// outer builds a test packet: an IPv4 header for proto followed by body.
// The real encap package builds these in production; this is a tiny local
// stand-in so the socket tests stand alone.
//
//	 0                   1                   2                   3
//	+-------+-------+---------------+-------------------------------+
//	|Ver=4  |IHL=5  |    TOS = 0    |          Total Length         |
//	+-------+-------+---------------+-----+-------------------------+
//	|        Identification = id    |Flags|   Fragment Offset = 0   |
//	+---------------+---------------+-----+-------------------------+
//	|   TTL = 64    |  Protocol     |        Header Checksum        |
//	+---------------+---------------+-------------------------------+
//	|                    Source Address = src                       |
//	|                 Destination Address = dst                     |
//	+---------------------------------------------------------------+
func outer(proto int, src, dst [4]byte, id uint16, df bool, body []byte) []byte {
	p := make([]byte, 20+len(body))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	if df {
		p[6] = 0x40
	}
	p[8] = 64
	p[9] = byte(proto)
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[10:], header.Checksum(p[:20]))
	copy(p[20:], body)
	return p
}

// greBody is a GRE header with a key (RFC 2890) followed by an inner
// "packet" of n bytes that encodes seq, so every packet is distinct:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-------------------------------+
//	|C=0|R|K=1|S=0| Reserved0 | Ver |    Protocol Type = 0x0800     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-------------------------------+
//	|                           Key = key                           |
//	+---------------------------------------------------------------+
func greBody(key uint32, seq, n int) []byte {
	b := make([]byte, 8+n)
	b[0] = 0x20
	binary.BigEndian.PutUint16(b[2:], 0x0800)
	binary.BigEndian.PutUint32(b[4:], key)
	for i := range n {
		b[8+i] = byte(seq + i)
	}
	return b
}

// greBatch returns n GRE packets from a to b of varied sizes (up to a 1500
// byte outer packet), so that a mix-up of slots or lengths shows.
func greBatch(n int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		size := 20 + (i*97)%1452
		pkts[i] = outer(ProtoGRE, addrA, addrB, uint16(i+1), true, greBody(42, i, size))
	}
	return pkts
}

func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// closeAfter closes c if the test has not finished by then, so that a lost
// packet fails the test instead of hanging it.
func closeAfter(t *testing.T, c *Conn) {
	timer := time.AfterFunc(20*time.Second, func() { c.Close() })
	t.Cleanup(func() { timer.Stop() })
}

// readN reads until want packets have arrived and returns copies of them.
func readN(c *Conn, want, batch int) ([][]byte, error) {
	bufs, sizes := newBufs(batch, 65535)
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

func TestBatchRoundTrip(t *testing.T) {
	_, a, b := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	closeAfter(t, rx)

	const rounds = 4
	pkts := greBatch(64)
	var want [][]byte
	for r := range rounds {
		n, err := tx.WriteBatch(pkts)
		if n != len(pkts) || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v; want %d, nil", r, n, err, len(pkts))
		}
		want = append(want, pkts...)
	}
	got, err := readN(rx, len(want), 16)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("received packets differ (-sent +received):\n%s", diff)
	}
	if s := rx.Stats(); s.Truncated != 0 {
		t.Errorf("Truncated = %d, want 0", s.Truncated)
	}
}

func TestReadBatchTruncated(t *testing.T) {
	_, a, b := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	closeAfter(t, rx)

	big := outer(ProtoGRE, addrA, addrB, 1, true, greBody(1, 0, 1000))
	small := outer(ProtoGRE, addrA, addrB, 2, true, greBody(1, 0, 10))
	if n, err := tx.WriteBatch([][]byte{big, small}); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	bufs, sizes := newBufs(1, 100)
	var got []int
	for len(got) < 2 {
		n, err := rx.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sizes[:n]...)
	}
	if want := []int{0, len(small)}; !cmp.Equal(want, got) {
		t.Errorf("sizes = %v, want %v", got, want)
	}
	if s := rx.Stats(); s.Truncated != 1 {
		t.Errorf("Truncated = %d, want 1", s.Truncated)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	_, a, _ := newPair(t, "1500")
	c := openIn(t, a, ProtoGRE)
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(8, 2048)
		_, err := c.ReadBatch(bufs, sizes)
		errc <- err
	}()
	if err := gostack.WaitBlocked("rawsock.(*Conn).ReadBatch", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
		checkOpError(t, err, "read", false)
		if Continue(err) {
			t.Errorf("Continue(%v) = true, want false", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked 10s after Close")
	}
}

func TestProtocolsAreSeparate(t *testing.T) {
	_, a, b := newPair(t, "1500")
	// Inner headers would follow; any bytes do for the sockets. Each
	// protocol's packets are sent after GRE's: a socket that saw GRE
	// would read a GRE packet first.
	protos := []int{ProtoGRE, ProtoIPIP, ProtoIPv6}
	sent := map[int][][]byte{
		ProtoGRE:  greBatch(8),
		ProtoIPIP: {outer(ProtoIPIP, addrA, addrB, 99, true, []byte("inner IPv4 packet"))},
		ProtoIPv6: {outer(ProtoIPv6, addrA, addrB, 100, true, []byte("inner IPv6 packet"))},
	}
	rx := map[int]*Conn{}
	for _, proto := range protos {
		rx[proto] = openIn(t, b, proto)
		closeAfter(t, rx[proto])
	}
	for _, proto := range protos {
		if n, err := openIn(t, a, proto).WriteBatch(sent[proto]); n != len(sent[proto]) || err != nil {
			t.Fatalf("protocol %d: WriteBatch = %d, %v", proto, n, err)
		}
	}
	for _, proto := range protos {
		got, err := readN(rx[proto], len(sent[proto]), 64)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sent[proto], got); diff != "" {
			t.Errorf("protocol %d socket read (-want +got):\n%s", proto, diff)
		}
	}
}

func TestWriteBatchErrorIndex(t *testing.T) {
	_, a, b := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	closeAfter(t, rx)

	ok := func(id uint16) []byte { return outer(ProtoGRE, addrA, addrB, id, true, greBody(7, int(id), 100)) }
	// 1600 bytes > the 1500-byte veth MTU; with DF clear as well: the
	// kernel does not fragment IP_HDRINCL packets.
	tooBigDF := outer(ProtoGRE, addrA, addrB, 3, true, greBody(7, 3, 1572))
	tooBigNoDF := outer(ProtoGRE, addrA, addrB, 5, false, greBody(7, 5, 1572))
	notIP := []byte{0x60, 0, 0, 0}

	tests := []struct {
		name    string
		pkts    [][]byte
		wantN   int
		wantErr error
	}{
		{"too big with DF at 2", [][]byte{ok(1), ok(2), tooBigDF, ok(4)}, 2, syscall.EMSGSIZE},
		{"too big without DF at 0", [][]byte{tooBigNoDF, ok(6)}, 0, syscall.EMSGSIZE},
		{"not IPv4 at 1", [][]byte{ok(7), notIP, ok(8)}, 1, ErrNotIPv4},
		{"empty packet at 0", [][]byte{{}}, 0, ErrNotIPv4},
	}
	var wantRx [][]byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tx.WriteBatch(tt.pkts)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteBatch = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			checkOpError(t, err, "write", tt.wantErr != ErrNotIPv4)
			if tt.wantErr == syscall.EMSGSIZE && !IsTooBig(err) {
				t.Errorf("IsTooBig(%v) = false", err)
			}
			if !Continue(err) {
				t.Errorf("Continue(%v) = false, want true", err)
			}
			wantRx = append(wantRx, tt.pkts[:n]...)
			// The caller drops packet n and continues with the rest.
			rest := tt.pkts[n+1:]
			if m, err := tx.WriteBatch(rest); m != len(rest) || err != nil {
				t.Fatalf("WriteBatch(rest) = %d, %v; want %d, nil", m, err, len(rest))
			}
			wantRx = append(wantRx, rest...)
		})
	}
	got, err := readN(rx, len(wantRx), 64)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRx, got); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

func TestWriteBatchNoRoute(t *testing.T) {
	_, a, _ := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	// 203.0.113.9 is not routed in namespace a (no default route).
	p := outer(ProtoGRE, addrA, [4]byte{203, 0, 113, 9}, 1, true, greBody(1, 0, 10))
	n, err := tx.WriteBatch([][]byte{p})
	if n != 0 || !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("WriteBatch = %d, %v; want 0, ENETUNREACH", n, err)
	}
	checkOpError(t, err, "write", true)
}

// checkOpError checks that err has the shape of every Conn error, reads and
// writes alike: a *net.OpError for op on "ip4" naming the local address,
// around an *os.SyscallError when the kernel refused (fromKernel).
func checkOpError(t *testing.T, err error, op string, fromKernel bool) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Net != "ip4" || oe.Addr == nil {
		t.Errorf("%s error %#v: want a *net.OpError for %s on ip4 with the local address", op, err, op)
		return
	}
	var se *os.SyscallError
	if fromKernel && !errors.As(err, &se) {
		t.Errorf("%s error %#v: want an *os.SyscallError inside", op, err)
	}
}

// TestAllocs measures what a batch costs the garbage collector: neither
// direction allocates (the receive side calls recvmmsg itself, without
// source addresses, rather than through x/net, which allocated two objects
// per packet).
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	_, a, b := newPair(t, "1500")
	tx := openIn(t, a, ProtoGRE)
	rx := openIn(t, b, ProtoGRE)
	closeAfter(t, rx)

	const batch = 64
	pkts := greBatch(batch)
	bufs, sizes := newBufs(batch, 2048)
	var failed error
	roundTrip := func() {
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
	}
	write := testing.AllocsPerRun(50, func() {
		if n, err := tx.WriteBatch(pkts); n != batch || err != nil {
			failed = fmt.Errorf("WriteBatch = %d, %v", n, err)
		}
	})
	// Drain what the write-only runs sent (51 batches, one a warm-up).
	if _, err := readN(rx, 51*batch, batch); err != nil {
		t.Fatal(err)
	}
	both := testing.AllocsPerRun(50, roundTrip)
	if failed != nil {
		t.Fatal(failed)
	}
	read := both - write
	t.Logf("allocations per batch of %d: WriteBatch %.1f, ReadBatch %.1f (%.2f per packet)", batch, write, read, read/batch)
	if write != 0 {
		t.Errorf("WriteBatch allocates %.1f times per batch, want 0", write)
	}
	if read != 0 {
		t.Errorf("ReadBatch allocates %.1f times per batch of %d, want 0", read, batch)
	}
}

// BenchmarkBatchVeth sends batches of 64 full-size (1476-byte inner) GRE
// packets from namespace a to namespace b over veth and reports how many
// the receiver's ReadBatch loop got per second. Run as root:
//
//	go test -run '^$' -bench BatchVeth ./rawsock
//
// The csum variants carry GRE checksums (unverified here): those packets
// also pass the offload side channel's filter (offload_linux.go).
func BenchmarkBatchVeth(b *testing.B) {
	for _, size := range []int{1500, 128} {
		b.Run(fmt.Sprintf("outer=%d", size), func(b *testing.B) { benchBatch(b, size, false) })
		b.Run(fmt.Sprintf("outer=%d/csum", size), func(b *testing.B) { benchBatch(b, size, true) })
	}
}

func benchBatch(b *testing.B, size int, csum bool) {
	_, a, bb := newPair(b, "1500")
	tx := openIn(b, a, ProtoGRE)
	rx := openIn(b, bb, ProtoGRE)

	const batch = 64
	pkts := make([][]byte, batch)
	for i := range pkts {
		body := greBody(1, i, size-28)
		if csum { // C and K: a checksum word before the key
			body = append([]byte{0xa0, 0, 0x08, 0, 0, 0, 0, 0}, body[4:len(body)-4]...)
		}
		pkts[i] = outer(ProtoGRE, addrA, addrB, uint16(i+1), true, body)
	}
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bufs, sizes := newBufs(batch, 2048)
		for {
			n, err := rx.ReadBatch(bufs, sizes)
			if err != nil {
				return
			}
			received.Add(int64(n))
		}
	}()
	// Warm up the neighbour entry and the receive loop.
	tx.WriteBatch(pkts)
	for received.Load() < batch {
		time.Sleep(time.Millisecond)
	}
	received.Store(0)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var sent int64
	for b.Loop() {
		n, err := tx.WriteBatch(pkts)
		if err != nil && !errors.Is(err, syscall.ENOBUFS) {
			b.Fatal(err)
		}
		sent += int64(n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Let the receiver finish what is queued.
	for last := int64(-1); received.Load() != last; {
		last = received.Load()
		time.Sleep(20 * time.Millisecond)
	}
	rx.Close()
	wg.Wait()
	got := received.Load()
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "sent-pkts/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "recv-pkts/s")
	b.ReportMetric(100*float64(sent-got)/float64(max(sent, 1)), "loss-%")
	b.ReportMetric(float64(got*int64(size)*8)/elapsed.Seconds()/1e9, "Gbit/s")
}
