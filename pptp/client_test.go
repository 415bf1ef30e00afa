package pptp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/ppp"
)

// testClient is a call in progress without sockets: call 0x1235 with
// server 192.0.2.2.
func testClient(sent *[][]byte) *client {
	c := &client{cfg: Config{Server: netip.MustParseAddr("192.0.2.2")}, stats: newStats(), callID: 0x1235}
	c.link = ppp.New(ppp.Config{Magic: func() uint32 { return 7 }, Send: func(f []byte) { *sent = append(*sent, f) }})
	return c
}

// ipGRE wraps a GRE packet in an IPv4 header from src.
func ipGRE(src string, gre []byte) []byte {
	b := make([]byte, 20+len(gre))
	header.IPv4(b).Encode(&header.IPv4Fields{TotalLen: uint16(len(b)), TTL: 64, Protocol: header.ProtoGRE,
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("192.0.2.1")})
	copy(b[20:], gre)
	return b
}

// Forged and malformed packets are dropped with their reason; other hosts'
// GRE and GRE version 0 are ignored; nothing panics.
func TestReceiveDrops(t *testing.T) {
	var sent [][]byte
	c := testClient(&sent)
	c.link.Start()
	for _, tc := range []struct {
		name, src, gre, reason string
	}{
		{"other host", "192.0.2.9", "3001 880b 0004 1235 00000001 ff03c021", ""},
		{"GRE version 0", "192.0.2.2", "0000 0800 4500", ""},
		{"other call", "192.0.2.2", "3001 880b 0004 9999 00000001 ff03c021", "gre1-call-id"},
		{"short", "192.0.2.2", "3001 880b 0010 1235 00000001 ff03", "gre1-short"},
		{"not PPP", "192.0.2.2", "3001 0800 0004 1235 00000001 ff03c021", "gre1-proto"},
		{"no key", "192.0.2.2", "1001 880b 0004 1235 00000001 ff03c021", "gre1-flags"},
		{"payload without seq", "192.0.2.2", "2001 880b 0004 1235 ff03c021", "gre1-no-seq"},
		{"ack only", "192.0.2.2", "2081 880b 0000 1235 00000003", ""},
		{"IP before IPCP", "192.0.2.2", "3001 880b 0005 1235 00000005 ff03002145", "rx-not-open"},
		{"duplicate", "192.0.2.2", "3001 880b 0005 1235 00000005 ff03002145", "gre1-seq-old"},
		{"older", "192.0.2.2", "3001 880b 0005 1235 00000004 ff03002145", "gre1-seq-old"},
		{"bad PPP", "192.0.2.2", "3001 880b 0002 1235 00000006 ff03", "ppp-short"},
		{"bad LCP", "192.0.2.2", "3001 880b 0008 1235 00000007 ff03c021 0101 00ff", "ppp-length"},
	} {
		out := make([][]byte, 1)
		if got := c.receive(ipGRE(tc.src, h(tc.gre)), out); got != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.reason)
		}
	}
	if got := c.receive([]byte{0x45, 0}, make([][]byte, 1)); got != "ip-malformed" {
		t.Errorf("truncated IPv4: %q", got)
	}
	if got := c.rxSeq.Load(); got != 7 {
		t.Errorf("last accepted sequence number %d, want 7", got)
	}
}

// Dropping never allocates: a flood of forged packets costs no garbage.
func TestReceiveDropAllocs(t *testing.T) {
	var sent [][]byte
	c := testClient(&sent)
	other := ipGRE("192.0.2.2", h("3001 880b 0004 9999 00000001 ff03c021"))
	old := ipGRE("192.0.2.2", h("3001 880b 0005 1235 00000000 ff03002145"))
	c.rxAny.Store(true)
	c.rxSeq.Store(10)
	out := make([][]byte, 1)
	if n := testing.AllocsPerRun(100, func() {
		c.receive(other, out)
		c.receive(old, out)
	}); n != 0 {
		t.Errorf("%v allocations per dropped packet pair, want 0", n)
	}
}

// controlPipe runs the control loop of a call (server call 0x80) on one
// end of a pipe and returns the server's end and the loop's result.
func controlPipe(t *testing.T) (*client, net.Conn, chan error) {
	var sent [][]byte
	c := testClient(&sent)
	c.peerID = 0x80
	c.cfg.Log = io.Discard
	srv, cl := net.Pipe()
	t.Cleanup(func() { srv.Close() })
	c.ctrl = cl
	done := make(chan error, 1)
	go func() { done <- c.readControl() }()
	return c, srv, done
}

// The control loop answers the server's echoes, ignores a disconnect
// for another call (counted), and ends on the server's Stop.
func TestReadControl(t *testing.T) {
	c, srv, done := controlPipe(t)

	srv.Write(Echo(0xabcd).Marshal())
	m, err := ReadMessage(srv)
	if err != nil || m.Type != EchoReply || EchoID(m) != 0xabcd || m.Body[4] != 1 {
		t.Fatalf("answer to an Echo-Request: %+v %v", m, err)
	}
	cdn := NewMessage(CallDisconnectNotify)
	cdn.put16(0, 0x99) // not the server's call
	srv.Write(cdn.Marshal())
	srv.Write(StopRequest().Marshal())
	if m, err := ReadMessage(srv); err != nil || m.Type != StopControlConnectionReply {
		t.Fatalf("answer to a Stop-Control-Connection-Request: %+v %v", m, err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("readControl = %v, want the server's stop", err)
	}
	if got := c.stats.Drop("ctrl-call-id"); got != 1 {
		t.Errorf("ctrl-call-id drops %d, want 1", got)
	}
}

// A Call-Disconnect-Notify for our call ends the call: gretun stops the
// control connection and the loop says why.
func TestReadControlDisconnect(t *testing.T) {
	_, srv, done := controlPipe(t)
	cdn := NewMessage(CallDisconnectNotify)
	cdn.put16(0, 0x80)
	srv.Write(cdn.Marshal())
	if m, err := ReadMessage(srv); err != nil || m.Type != StopControlConnectionRequest {
		t.Fatalf("after the disconnect: %+v %v, want a Stop-Control-Connection-Request", m, err)
	}
	srv.Write(StopReply().Marshal())
	if err := <-done; err == nil || !strings.Contains(err.Error(), "the server cleared the call") {
		t.Errorf("readControl = %v, want the server's clearing", err)
	}
}

// Garbage on the control connection ends it with an error, counted.
func TestReadControlMalformed(t *testing.T) {
	c, srv, done := controlPipe(t)
	srv.Write(h("0010 0001 deadbeef 0005 0000 00000001"))
	if err := <-done; !errors.Is(err, ErrBadMagic) {
		t.Errorf("readControl = %v, want ErrBadMagic", err)
	}
	if got := c.stats.Drop("ctrl-malformed"); got != 1 {
		t.Errorf("ctrl-malformed drops %d, want 1", got)
	}
}

// keepalive runs c.keepalive(now) while the server's end reads what it
// sends (a pipe's writes wait for the reader); it returns the error and
// the message sent, if any.
func keepalive(t *testing.T, c *client, srv net.Conn, now time.Time, wantEcho bool) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.keepalive(now) }()
	if wantEcho {
		srv.SetReadDeadline(time.Now().Add(10 * time.Second)) // none sent: fail, not hang
		defer srv.SetReadDeadline(time.Time{})
		if m, err := ReadMessage(srv); err != nil || m.Type != EchoRequest {
			t.Fatalf("keepalive at %v: %+v %v, want an Echo-Request", now, m, err)
		}
	}
	return <-errc
}

// An Echo-Request that nothing answers for 60 s ends the call.
func TestKeepaliveTimeout(t *testing.T) {
	c, srv, _ := controlPipe(t)
	t0 := time.Unix(1e9, 0)
	if err := keepalive(t, c, srv, t0, true); err != nil {
		t.Fatal(err)
	}
	if err := keepalive(t, c, srv, t0.Add(59*time.Second), false); err != nil {
		t.Fatalf("59 s after the echo: %v, want none yet", err)
	}
	err := keepalive(t, c, srv, t0.Add(60*time.Second), false)
	if err == nil || err.Error() != "no answer from the server's control connection for 60 s" {
		t.Errorf("60 s after an unanswered echo: %v, want the timeout", err)
	}
}

// A reply (any control message) in time keeps the call, and the next
// echo goes out 60 s after the last one.
func TestKeepaliveReply(t *testing.T) {
	c, srv, _ := controlPipe(t)
	t0 := time.Unix(1e9, 0)
	for i := 0; i < 3; i++ {
		now := t0.Add(time.Duration(i) * echoEvery)
		if err := keepalive(t, c, srv, now, true); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		srv.Write(EchoReplyTo(Echo(c.echoID)).Marshal())
		// The loop answers in order: once our echo's answer is back, the
		// reply before it was read.
		srv.Write(Echo(0x77).Marshal())
		if m, err := ReadMessage(srv); err != nil || m.Type != EchoReply {
			t.Fatalf("answer to the server's echo: %+v %v", m, err)
		}
	}
	if err := keepalive(t, c, srv, t0.Add(3*echoEvery-time.Second), false); err != nil {
		t.Errorf("after the replies: %v, want none", err)
	}
}
