package socks5

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// hostNet is the host's own network, as the proxy's Net in tests.
type hostNet struct{ net.Dialer }

func (hostNet) ListenUDP(port uint16) (net.PacketConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
}

func (hostNet) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	if host == "echo.test" {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	return netip.Addr{}, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (h hostNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, _ := net.SplitHostPort(address)
	if strings.HasSuffix(host, ".test") {
		a, err := h.Resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		address = net.JoinHostPort(a.String(), port)
	}
	return h.Dialer.DialContext(ctx, network, address)
}

// errNet fails every dial with err, or blocks until the dial's deadline.
type errNet struct {
	hostNet
	err error
}

func (n errNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if n.err == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, &net.OpError{Op: "dial", Net: network, Err: n.err}
}

// logBuf collects the server's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve starts a proxy on loopback and returns its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// echoTCP is a TCP echo server on loopback.
func echoTCP(t testing.TB) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go testnet.EchoTCP(ln)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// dial opens a client connection, authenticates (with user:pass when
// user is set) and sends req; it returns the connection and the reply
// code (0xff for a refused method, 0xfe for failed authentication).
func dial(t testing.TB, proxy, user, pass string, req Request) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	method := byte(methodNone)
	if user != "" {
		method = methodPass
	}
	c.Write([]byte{5, 1, method})
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatalf("method reply: %v", err)
	}
	if h[1] == methodNoAcceptable {
		return c, 0xff
	}
	if user != "" {
		c.Write(append(append(append([]byte{1, byte(len(user))}, user...), byte(len(pass))), pass...))
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatalf("auth reply: %v", err)
		}
		if h[1] != 0 {
			return c, 0xfe
		}
	}
	c.Write(AppendRequest(nil, req))
	var r [4]byte
	if _, err := io.ReadFull(c, r[:]); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if _, err := readAddr(c, r[3]); err != nil {
		t.Fatalf("reply address: %v", err)
	}
	return c, r[1]
}

func connectTo(ap netip.AddrPort) Request {
	return Request{Cmd: cmdConnect, Dest: Addr{IP: ap.Addr(), Port: ap.Port()}}
}

func echoes(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

func TestConnect(t *testing.T) {
	echo := echoTCP(t)
	proxy := serve(t, &Server{Net: hostNet{}})
	c, code := dial(t, proxy, "", "", connectTo(echo))
	defer c.Close()
	if code != ReplySucceeded {
		t.Fatalf("reply %d", code)
	}
	echoes(t, c, "hello through socks")
	// A name is resolved by the Net (inside the tunnel in gretun).
	c2, code := dial(t, proxy, "", "", Request{Cmd: cmdConnect, Dest: Addr{Name: "echo.test", Port: echo.Port()}})
	defer c2.Close()
	if code != ReplySucceeded {
		t.Fatalf("reply %d to a name", code)
	}
	echoes(t, c2, "by name")
}

// TestErrors: every failure gets its reply code at once and a log line,
// and the proxy goes on serving the next client.
func TestErrors(t *testing.T) {
	echo := echoTCP(t)
	closed := func() netip.AddrPort {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).AddrPort()
	}()
	for _, tc := range []struct {
		name string
		net  Net
		user string
		req  Request
		want byte
		log  string
	}{
		{"refused", hostNet{}, "", connectTo(closed), ReplyConnectionRefused, "connect failed"},
		{"host unreachable", errNet{err: syscall.EHOSTUNREACH}, "", connectTo(echo), ReplyHostUnreachable, "connect failed"},
		{"network unreachable", errNet{err: syscall.ENETUNREACH}, "", connectTo(echo), ReplyNetworkUnreachable, "connect failed"},
		{"black hole", errNet{}, "", connectTo(echo), ReplyTTLExpired, "connect failed"},
		{"unknown name", hostNet{}, "", Request{Cmd: cmdConnect, Dest: Addr{Name: "nowhere.test", Port: 80}}, ReplyHostUnreachable, "connect failed"},
		{"bind", hostNet{}, "", Request{Cmd: cmdBind, Dest: Addr{IP: echo.Addr(), Port: 1}}, ReplyCommandUnsupported, "command not supported"},
		{"unknown command", hostNet{}, "", Request{Cmd: 9, Dest: Addr{IP: echo.Addr(), Port: 1}}, ReplyCommandUnsupported, "command not supported"},
		{"wrong password", hostNet{}, "alice", connectTo(echo), 0xfe, "authentication failed"},
		{"no password offered", hostNet{}, "", connectTo(echo), 0xff, "no acceptable authentication method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuf
			s := &Server{Net: tc.net, Log: slog.New(slog.NewTextHandler(&logs, nil)), DialTimeout: 500 * time.Millisecond}
			if tc.user != "" || tc.want == 0xff {
				s.User, s.Pass = "alice", "secret"
			}
			proxy := serve(t, s)
			start := time.Now()
			c, code := dial(t, proxy, tc.user, "wrong", tc.req)
			c.Close()
			if code != tc.want {
				t.Errorf("reply %#x, want %#x", code, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the reply took %v", d)
			}
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), tc.log) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log %q, want a line with %q", logs.String(), tc.log)
			}
			// The proxy still serves a well-behaved client.
			s.Net = hostNet{}
			ok, code := dial(t, proxy, s.User, s.Pass, connectTo(echo))
			defer ok.Close()
			if code != ReplySucceeded {
				t.Fatalf("the next client got %#x", code)
			}
			echoes(t, ok, "still serving")
		})
	}
}

// TestSlowDial: a dial that outlasts the handshake's deadline still gets
// its reply written (a black hole's "TTL expired" came after the 10 s
// handshake deadline, and the client saw the connection closed instead).
func TestSlowDial(t *testing.T) {
	echo := echoTCP(t)
	s := &Server{Net: errNet{}, HandshakeTimeout: 100 * time.Millisecond, DialTimeout: 400 * time.Millisecond}
	proxy := serve(t, s)
	c, code := dial(t, proxy, "", "", connectTo(echo))
	c.Close()
	if code != ReplyTTLExpired {
		t.Errorf("reply %#x after a dial longer than the handshake, want %#x", code, ReplyTTLExpired)
	}
}

// TestMalformed: a request in another version, or an address type that
// does not exist, is answered (where the protocol has an answer) and
// closed, and the proxy goes on.
func TestMalformed(t *testing.T) {
	echo := echoTCP(t)
	var logs logBuf
	proxy := serve(t, &Server{Net: hostNet{}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, tc := range []struct {
		name string
		send []byte
		want []byte // the reply after the method's
	}{
		{"address type 9", []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, []byte{5, ReplyAddressUnsupported}},
		{"version 4 request", []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, []byte{5, ReplyGeneralFailure}},
		{"empty name", []byte{5, 1, 0, 3, 0, 0, 80}, []byte{5, ReplyHostUnreachable}},
	} {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(append([]byte{5, 1, 0}, tc.send...))
		got, _ := io.ReadAll(c)
		c.Close()
		if len(got) < 2+len(tc.want) || !bytes.Equal(got[2:2+len(tc.want)], tc.want) {
			t.Errorf("%s: got % x, want the method reply then % x and the connection closed", tc.name, got, tc.want)
		}
	}
	// Not SOCKS5 at all: closed without a word.
	c, _ := net.Dial("tcp", proxy)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("an HTTP request got % x", got)
	}
	c.Close()
	if !strings.Contains(logs.String(), "bad request") || !strings.Contains(logs.String(), "handshake failed") {
		t.Errorf("log: %s", logs.String())
	}
	ok, code := dial(t, proxy, "", "", connectTo(echo))
	defer ok.Close()
	if code != ReplySucceeded {
		t.Fatalf("after malformed requests: reply %#x", code)
	}
}

func TestAuth(t *testing.T) {
	echo := echoTCP(t)
	proxy := serve(t, &Server{Net: hostNet{}, User: "alice", Pass: "secret"})
	c, code := dial(t, proxy, "alice", "secret", connectTo(echo))
	defer c.Close()
	if code != ReplySucceeded {
		t.Fatalf("reply %#x with the right password", code)
	}
	echoes(t, c, "authenticated")
	if c, code := dial(t, proxy, "alice", "secreT", connectTo(echo)); code != 0xfe {
		t.Errorf("wrong password: %#x", code)
	} else {
		c.Close()
	}
	if c, code := dial(t, proxy, "", "", connectTo(echo)); code != 0xff {
		t.Errorf("no authentication offered: %#x", code)
	} else {
		c.Close()
	}
}

// TestUDPAssociate: a datagram sent through the association reaches an
// echo server, and its answer comes back with the server's address in
// the SOCKS header; datagrams from other ports of the client are dropped
// once it named its port.
func TestUDPAssociate(t *testing.T) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	echoAP := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	proxy := serve(t, &Server{Net: hostNet{}})
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	me := client.LocalAddr().(*net.UDPAddr).AddrPort()
	relay := associateAddr(t, proxy, me)
	for _, dst := range []Addr{{IP: echoAP.Addr(), Port: echoAP.Port()}, {Name: "echo.test", Port: echoAP.Port()}} {
		client.WriteToUDPAddrPort(AppendUDP(nil, dst, []byte("datagram")), relay)
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2000)
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("%v: no answer: %v", dst, err)
		}
		from, data, err := ParseUDP(buf[:n])
		if err != nil || string(data) != "datagram" || from.IP != echoAP.Addr() || from.Port != echoAP.Port() {
			t.Errorf("%v: answer from %v: %q, %v", dst, from, data, err)
		}
	}
	stranger, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer stranger.Close()
	stranger.WriteToUDPAddrPort(AppendUDP(nil, Addr{IP: echoAP.Addr(), Port: echoAP.Port()}, []byte("x")), relay)
	stranger.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := stranger.Read(make([]byte, 100)); err == nil {
		t.Error("a datagram from another port was relayed")
	}
}

// associateAddr opens a UDP association for client and returns the relay
// address the proxy bound for it (the connection stays open until the
// test ends).
func associateAddr(t *testing.T, proxy string, client netip.AddrPort) netip.AddrPort {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0})
	c.Write(AppendRequest(nil, Request{Cmd: cmdAssociate, Dest: Addr{IP: client.Addr(), Port: client.Port()}}))
	var h [2 + 4 + 4 + 2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[3] != ReplySucceeded || h[5] != atypIPv4 {
		t.Fatalf("associate: % x, %v", h, err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[6:10])), binary.BigEndian.Uint16(h[10:]))
}

// TestManyConnections: hundreds of clients at once are served, and once
// they close the proxy holds no goroutine and no memory for them.
func TestManyConnections(t *testing.T) {
	echo := echoTCP(t)
	s := &Server{Net: hostNet{}}
	proxy := serve(t, s)
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// A first round warms up pools and the runtime's own goroutines.
	c, _ := dial(t, proxy, "", "", connectTo(echo))
	echoes(t, c, "warm")
	c.Close()
	waitGoroutines(t, 0)
	g0, h0 := settle()

	const n = 300
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, code := dial(t, proxy, "", "", connectTo(echo))
			if code != ReplySucceeded {
				t.Errorf("client %d: reply %#x", i, code)
			}
			echoes(t, c, "concurrent")
			conns[i] = c
		})
	}
	wg.Wait()
	if g, _ := settle(); g < g0+n {
		t.Fatalf("%d goroutines with %d clients open, baseline %d: not all were served at once", g, n, g0)
	}
	for _, c := range conns {
		c.Close()
	}
	g := waitGoroutines(t, g0)
	_, h := settle()
	if g > g0 {
		t.Errorf("%d goroutines after %d clients closed, baseline %d", g, n, g0)
	}
	if h > h0+1<<20 {
		t.Errorf("heap %d bytes after %d clients closed, baseline %d", h, n, h0)
	}
}

// waitGoroutines waits for the goroutine count to fall to at most want
// (0: until it stops falling) and returns it.
func waitGoroutines(t *testing.T, want int) int {
	prev, stable := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		g := runtime.NumGoroutine()
		if want > 0 && g <= want {
			return g
		}
		if g == prev {
			if stable++; want == 0 && stable > 10 {
				return g
			}
		} else {
			stable = 0
		}
		prev = g
	}
	return runtime.NumGoroutine()
}

// TestCloseEndsEverything: Close ends every client's connection and the
// proxy's goroutines, also a dial still in progress.
func TestCloseEndsEverything(t *testing.T) {
	echo := echoTCP(t)
	g0 := waitGoroutines(t, 0)
	s := &Server{Net: hostNet{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Serve(ln) }()
	c, _ := dial(t, ln.Addr().String(), "", "", connectTo(echo))
	defer c.Close()
	s.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection is still open")
	}
	c.Close()
	if g := waitGoroutines(t, g0+2); g > g0+2 { // the echo server's
		t.Errorf("%d goroutines after Close, baseline %d", g, g0)
	}
}

// silentNet dials connections whose far side never speaks or closes.
type silentNet struct {
	hostNet
	mu   sync.Mutex
	ends []net.Conn
}

func (n *silentNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	a, b := net.Pipe()
	n.mu.Lock()
	n.ends = append(n.ends, b)
	n.mu.Unlock()
	return halfCloser{a}, nil
}

// halfCloser is a connection whose CloseWrite leaves it open for reading
// (as TCP's).
type halfCloser struct{ net.Conn }

func (halfCloser) CloseWrite() error { return nil }

// TestCloseEndsRelays: Close returns while a relay waits on a far side
// that never speaks, as a tunnel's stack may.
func TestCloseEndsRelays(t *testing.T) {
	s := &Server{Net: &silentNet{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	c, code := dial(t, ln.Addr().String(), "", "", connectTo(netip.MustParseAddrPort("198.51.100.2:80")))
	defer c.Close()
	if code != ReplySucceeded {
		t.Fatalf("reply %#x", code)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting for a relay")
	}
}
