package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/gretun/gretun/netstack/netstacktest"
)

// pair returns two stacks wired back to back, as two ends of a tunnel,
// and the largest packet seen going from a to b.
func pair(t *testing.T, mtu int) (a, b *Stack, largest *atomic.Int64) {
	return wired(t, "198.51.100.1/24", "198.51.100.2/24", "", mtu)
}

// wired is pair with the stacks' addresses (prefixes separated by spaces)
// and a's dns server ("" for none).
func wired(t *testing.T, addrsA, addrsB, dns string, mtu int) (a, b *Stack, largest *atomic.Int64) {
	t.Helper()
	open := func(addrs, dns string) *Stack {
		var prefixes []netip.Prefix
		for _, p := range strings.Fields(addrs) {
			prefixes = append(prefixes, netip.MustParsePrefix(p))
		}
		var server netip.Addr
		if dns != "" {
			server = netip.MustParseAddr(dns)
		}
		s, err := New(prefixes, server, mtu)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b = open(addrsA, dns), open(addrsB, "")
	largest = new(atomic.Int64)
	netstacktest.Wire(a, b, func(size int) {
		if int64(size) > largest.Load() {
			largest.Store(int64(size))
		}
	})
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, largest
}

// TestStackTCP: a connection from one stack to a listener on the other
// carries data both ways through Read and Write.
func TestStackTCP(t *testing.T) {
	a, b, _ := pair(t, 1400)
	ln, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", "198.51.100.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 100000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Error("echo differs")
	}
}

// TestStackRefused: a connection to a closed port fails at once with
// ECONNREFUSED, which the SOCKS5 server answers with its own code.
func TestStackRefused(t *testing.T) {
	a, _, _ := pair(t, 1400)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.DialContext(ctx, "tcp", "198.51.100.2:81")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want ECONNREFUSED", err)
	}
}

// TestStackUDP: a datagram goes to a UDP socket of the other stack and
// its answer comes back.
func TestStackUDP(t *testing.T) {
	a, b, _ := pair(t, 1400)
	pc, err := b.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo(buf[:n], from)
		}
	}()
	c, err := a.DialContext(context.Background(), "udp", "198.51.100.2:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("answer %q, %v", buf[:n], err)
	}
}

// TestStackSetMTU: after SetMTU no packet larger than the new MTU leaves
// the stack (its connections take their MSS from it).
func TestStackSetMTU(t *testing.T) {
	a, b, largest := pair(t, 1400)
	if err := a.SetMTU(1000); err != nil {
		t.Fatal(err)
	}
	if mtu, _ := a.MTU(); mtu != 1000 {
		t.Errorf("MTU %d after SetMTU(1000)", mtu)
	}
	ln, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		done <- n
	}()
	c, err := a.DialContext(context.Background(), "tcp", "198.51.100.2:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 50000))
	c.Close()
	if n := <-done; n != 50000 {
		t.Fatalf("%d bytes arrived, want 50000", n)
	}
	if l := largest.Load(); l > 1000 || l < 900 {
		t.Errorf("largest packet %d bytes, want at most the MTU of 1000 (and close to it)", l)
	}
}

// TestStackResolve: without a dns server only addresses are dialled; a
// name fails at once instead of asking the host's resolver.
func TestStackResolve(t *testing.T) {
	a, _, _ := pair(t, 1400)
	if _, err := a.DialContext(context.Background(), "tcp", "example.invalid:80"); err == nil {
		t.Fatal("a name resolved without a dns server")
	}
	var dnsErr *net.DNSError
	if _, err := a.Resolve(context.Background(), "example.invalid"); !errors.As(err, &dnsErr) {
		t.Errorf("Resolve: %v, want a DNS error", err)
	}
	if got := a.Addrs(); len(got) != 1 || got[0] != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("Addrs %v", got)
	}
}

// TestStackCloseEndsRead: Close ends a Read blocked waiting for a packet.
func TestStackCloseEndsRead(t *testing.T) {
	s, err := New([]netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}, netip.Addr{}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := s.Read([][]byte{make([]byte, 1500)}, []int{0}, 0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read returned no error after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

// TestStackResolveThroughDNS: names are looked up by the tunnel's dns
// server, inside the tunnel, whatever the host's resolv.conf says.
func TestStackResolveThroughDNS(t *testing.T) {
	a, b, _ := wired(t, "198.51.100.1/24", "198.51.100.2/24", "198.51.100.2", 1400)
	pc, err := b.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go serveDNS(pc, netip.MustParseAddr("203.0.113.7"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := a.Resolve(ctx, "www.example.test")
	if err != nil || got != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("Resolve: %v, %v; want 203.0.113.7 from the tunnel's dns", got, err)
	}
	// A name the host's /etc/hosts holds means what the tunnel's server
	// says, not what the host says.
	if got, err := a.Resolve(ctx, "localhost"); err != nil || got != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("Resolve(localhost): %v, %v; want 203.0.113.7 from the tunnel's dns, not the host's /etc/hosts", got, err)
	}
}

// serveDNS answers every A question with a, and others with no answer.
func serveDNS(pc net.PacketConn, a netip.Addr) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || len(m.Questions) == 0 {
			continue
		}
		m.Header.Response, m.Header.RecursionAvailable = true, true
		q := m.Questions[0]
		if q.Type == dnsmessage.TypeA {
			m.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 60},
				Body:   &dnsmessage.AResource{A: a.As4()},
			}}
		}
		out, err := m.Pack()
		if err == nil {
			pc.WriteTo(out, from)
		}
	}
}

// TestStackIPv6: a stack with IPv4 and IPv6 addresses connects over
// IPv6, and a stack with only IPv6 listens there.
func TestStackIPv6(t *testing.T) {
	a, b, _ := wired(t, "198.51.100.1/24 2001:db8:5::1/64", "2001:db8:5::2/64", "", 1400)
	ln, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("over IPv6"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", "[2001:db8:5::2]:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if string(got) != "over IPv6" {
		t.Errorf("read %q, %v", got, err)
	}
	if _, err := New([]netip.Prefix{netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::2/64")}, netip.Addr{}, 1400); err == nil {
		t.Error("two IPv6 addresses accepted")
	}
}
