package stackdev

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/netstack"
	"github.com/gretun/gretun/netstack/netstacktest"
	"github.com/gretun/gretun/socks5"
)

// farSide is the tunnel's other end: a plain stack at 198.51.100.2 with
// a TCP and a UDP echo on port 7.
func farSide(t *testing.T) *netstack.Stack {
	t.Helper()
	far, err := netstack.New([]netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}, netip.Addr{}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { far.Close() })
	ln, err := far.ListenTCP(7)
	if err != nil {
		t.Fatal(err)
	}
	go testnet.EchoTCP(ln)
	pc, err := far.ListenUDP(7)
	if err != nil {
		t.Fatal(err)
	}
	go echoUDP(pc)
	return far
}

func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 2000)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}

// freePort is a port free on loopback a moment ago.
func freePort(t *testing.T, network string) int {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// open starts a device at 198.51.100.1 with the stack words, wired to far.
func open(t *testing.T, far *netstack.Stack, words string) *Device {
	t.Helper()
	c, err := config.Parse("ns", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1 netstack 198.51.100.1/24 "+words))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(c.Stack, 1400, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	netstacktest.Wire(d, far, nil)
	return d
}

func echoes(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

// TestForward: `forward tcp|udp LISTEN TARGET` listens on this host and
// reaches the target inside the tunnel.
func TestForward(t *testing.T) {
	far := farSide(t)
	tp, up := freePort(t, "tcp"), freePort(t, "udp")
	open(t, far, "forward tcp "+itoa(tp)+" 198.51.100.2:7 forward udp 127.0.0.1:"+itoa(up)+" 198.51.100.2:7")
	for _, network := range []string{"tcp", "udp"} {
		port := tp
		if network == "udp" {
			port = up
		}
		c, err := net.Dial(network, "127.0.0.1:"+itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		echoes(t, c, "forwarded "+network)
		c.Close()
	}
}

// TestReverse: `reverse tcp|udp PORT TARGET` listens inside the stack
// and reaches a target on this host.
func TestReverse(t *testing.T) {
	far := farSide(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go testnet.EchoTCP(ln)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go echoUDP(pc)
	open(t, far, "reverse tcp 2222 "+ln.Addr().String()+" reverse udp 5353 "+pc.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, network := range []string{"tcp", "udp"} {
		port := "2222"
		if network == "udp" {
			port = "5353"
		}
		c, err := far.DialContext(ctx, network, "198.51.100.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		echoes(t, c, "reversed "+network)
		c.Close()
	}
}

// TestSOCKS5: the device's proxy connects inside the tunnel.
func TestSOCKS5(t *testing.T) {
	far := farSide(t)
	port := freePort(t, "tcp")
	open(t, far, "socks5 127.0.0.1:"+itoa(port))
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0})
	c.Write(socks5.AppendRequest(nil, socks5.Request{Cmd: 1, Dest: socks5.Addr{IP: netip.MustParseAddr("198.51.100.2"), Port: 7}}))
	reply := make([]byte, 2+10)
	if _, err := io.ReadFull(c, reply); err != nil || reply[3] != socks5.ReplySucceeded {
		t.Fatalf("reply % x, %v", reply, err)
	}
	echoes(t, c, "through the proxy")
}

// TestPortInUse: a port that is taken fails the device with an error
// naming it, and leaves nothing running (the stack closed, its goroutines
// gone, the proxy's port free again).
func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	socksPort := freePort(t, "tcp")
	g0 := runtime.NumGoroutine()
	c, err := config.Parse("ns", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1 netstack 198.51.100.1/24 socks5 127.0.0.1:"+itoa(socksPort)+" forward tcp "+taken.Addr().String()+" 198.51.100.2:7"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(c.Stack, 1400, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "forward tcp "+taken.Addr().String()) {
		t.Fatalf("Open with a port in use: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+itoa(socksPort))
	if err != nil {
		t.Errorf("the proxy's port was left taken: %v", err)
	} else {
		ln.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Errorf("%d goroutines after the failed Open, %d before", g, g0)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
