package netstack

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/socks5"
)

// TestManyConnections: 300 SOCKS5 CONNECTs at once through a stack (the
// proxy a stackdev device serves, on a host port) to an echo on the far
// stack are all served, and once the clients close, the goroutine count
// and the heap come back to their baseline.
//
// The stack that closes first keeps each connection's endpoint in
// TIME_WAIT, about 40 KiB each (12 MiB for 300), for gVisor's default of
// 60 s, and frees it then. The test shortens TIME_WAIT to 1 s on both
// stacks (tcpip.TCPTimeWaitTimeoutOption) so that the heap is back
// within seconds.
func TestManyConnections(t *testing.T) {
	a, b, _ := pair(t, 1400)
	timeWait := tcpip.TCPTimeWaitTimeoutOption(time.Second)
	for _, st := range []*Stack{a, b} {
		if err := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &timeWait); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := b.ListenTCP(7)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go testnet.EchoTCP(ln)
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5.Server{Net: a, Log: slog.New(slog.DiscardHandler)}
	go s.Serve(proxyLn)
	defer s.Close()
	proxy := proxyLn.Addr().String()

	connect := func(msg string) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte{5, 1, 0})
		c.Write(socks5.AppendRequest(nil, socks5.Request{Cmd: 1, Dest: socks5.Addr{IP: netip.MustParseAddr("198.51.100.2"), Port: 7}}))
		reply := make([]byte, 2+10)
		if _, err := io.ReadFull(c, reply); err != nil || reply[1] != socks5.ReplySucceeded {
			c.Close()
			return nil, &net.OpError{Op: "socks5 connect", Net: "tcp", Err: io.ErrUnexpectedEOF}
		}
		c.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			c.Close()
			return nil, &net.OpError{Op: "echo", Net: "tcp", Err: io.ErrUnexpectedEOF}
		}
		return c, nil
	}
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// A first round warms up the stacks, pools and the runtime; its
	// endpoint leaves TIME_WAIT before the baseline is taken.
	c, err := connect("warm")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitSteady()
	time.Sleep(1500 * time.Millisecond) // the warm-up's TIME_WAIT
	g0, h0 := settle()

	const n = 300
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := connect("concurrent")
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		t.FailNow()
	}
	// Each open client holds at least the proxy's relay and the far echo.
	if g, _ := settle(); g < g0+n {
		t.Fatalf("%d goroutines with %d clients open, baseline %d: not all were served at once", g, n, g0)
	}
	_, hOpen := settle()
	for _, c := range conns {
		c.Close()
	}
	var g int
	var h uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if g, h = settle(); g <= g0 && h <= h0+1<<20 {
			break
		}
	}
	t.Logf("heap %d bytes before, %d with %d clients open, %d after", h0, hOpen, n, h)
	if g > g0 {
		t.Errorf("%d goroutines after %d clients closed, baseline %d", g, n, g0)
	}
	if h > h0+1<<20 {
		t.Errorf("heap %d bytes after %d clients closed, baseline %d", h, n, h0)
	}
}

// waitSteady waits, up to 10 s, until the goroutine count has not
// changed for 500 ms.
func waitSteady() {
	prev, stable := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(10 * time.Second); stable < 10 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if g := runtime.NumGoroutine(); g == prev {
			stable++
		} else {
			prev, stable = g, 0
		}
	}
}
