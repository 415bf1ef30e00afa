package ppp

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// peer drives a Link as a PPTP server's pppd would, with frames written
// out byte by byte.
type peer struct {
	t    *testing.T
	l    *Link
	sent [][]byte
}

func newPeer(t *testing.T, allow Auth) *peer {
	p := &peer{t: t}
	magics := []uint32{0x11223344, 0x55667788}
	p.l = New(Config{
		User: "alice", Password: "pw!", Allow: allow,
		Magic: func() uint32 { m := magics[0]; magics = magics[1:]; return m },
		Send:  func(f []byte) { p.sent = append(p.sent, f) },
	})
	return p
}

// h parses hex with spaces and | separators.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// in feeds one frame; want are the frames the Link must answer with.
func (p *peer) in(frame string, want ...string) {
	p.t.Helper()
	if err := p.l.Input(h(frame)); err != nil {
		p.t.Fatalf("Input(%s): %v", frame, err)
	}
	p.expect(want...)
}

func (p *peer) expect(want ...string) {
	p.t.Helper()
	var got, w []string
	for _, f := range p.sent {
		got = append(got, hex.EncodeToString(f))
	}
	for _, f := range want {
		w = append(w, hex.EncodeToString(h(f)))
	}
	p.sent = nil
	if diff := cmp.Diff(w, got); diff != "" {
		p.t.Fatalf("frames sent (-want +got):\n%s", diff)
	}
}

// lcpUp takes a link through LCP with the server asking for auth (the
// option's data, e.g. "c023").
func (p *peer) lcpUp(auth string, afterAck ...string) {
	p.t.Helper()
	p.l.Start()
	//                 FF03 LCP  | ConfReq id 1 len 10 | magic 11223344
	p.expect("ff03 c021 | 01 01 000a | 05 06 11223344")
	authOpt := "03" + hex.EncodeToString([]byte{byte(2 + len(auth)/2)}) + auth
	req := "ff03 c021 | 01 01 " + hex.EncodeToString([]byte{0, byte(4 + 4 + len(authOpt)/2 + 6)}) +
		" | 01 04 0578 | " + authOpt + " | 05 06 aabbccdd"
	ack := "ff03 c021 | 02" + req[len("ff03 c021 | 01"):]
	p.in(req, ack)
	p.in("ff03 c021 | 02 01 000a | 05 06 11223344", afterAck...)
}

// ipcpReq is gretun's IPCP request for address a and DNS d1, d2.
func ipcpReq(id, a, d1, d2 string) string {
	return "ff03 8021 | 01 " + id + " 0016 | 03 06 " + a + " | 81 06 " + d1 + " | 83 06 " + d2
}

func TestLinkPAPAndIPCP(t *testing.T) {
	p := newPeer(t, AuthAny)
	// After both Configure-Acks: the PAP request, "alice" / "pw!".
	p.lcpUp("c023", "ff03 c023 | 01 02 000e | 05 616c696365 | 03 707721")
	if got := p.l.PeerMRU(); got != 1400 {
		t.Errorf("PeerMRU = %d, want the server's 1400", got)
	}
	// Authenticate-Ack: IPCP asks for an address and two DNS servers.
	p.in("ff03 c023 | 02 02 0005 | 00", ipcpReq("03", "00000000", "00000000", "00000000"))
	// The server's request: its own address; VJ compression is rejected.
	p.in("ff03 8021 | 01 01 0010 | 03 06 cb007101 | 02 06 002d 0f 01",
		"ff03 8021 | 04 01 000a | 02 06 002d 0f 01")
	p.in("ff03 8021 | 01 02 000a | 03 06 cb007101",
		"ff03 8021 | 02 02 000a | 03 06 cb007101")
	// The second DNS server is rejected, the address and first DNS nak'ed.
	p.in("ff03 8021 | 04 03 000a | 83 06 00000000",
		"ff03 8021 | 01 04 0010 | 03 06 00000000 | 81 06 00000000")
	p.in("ff03 8021 | 03 04 0010 | 03 06 cb007102 | 81 06 cb007135",
		"ff03 8021 | 01 05 0010 | 03 06 cb007102 | 81 06 cb007135")
	if p.l.Opened() {
		t.Fatal("opened before the server acked the address")
	}
	p.in("ff03 8021 | 02 05 0010 | 03 06 cb007102 | 81 06 cb007135")
	if !p.l.Opened() {
		t.Fatalf("phase %d after both IPCP acks, want opened", p.l.Phase())
	}
	local, peer, dns := p.l.Addrs()
	want := []netip.Addr{netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.53")}
	if diff := cmp.Diff(want, []netip.Addr{local, peer, dns[0]}, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" || len(dns) != 1 {
		t.Errorf("addresses (-want +got):\n%s (dns %v)", diff, dns)
	}
	// Echo-Request: the reply carries our magic number.
	p.in("ff03 c021 | 09 07 000c | aabbccdd | 01020304",
		"ff03 c021 | 0a 07 000c | 11223344 | 01020304")
	// CCP: a Protocol-Reject with the protocol and the packet.
	p.in("ff03 80fd | 01 01 0004", "ff03 c021 | 08 06 000a | 80fd | 01 01 0004")
	// A compressed frame (no FF03, one-byte protocol) is understood too.
	p.in("c021 | 09 08 0008 | aabbccdd", "ff03 c021 | 0a 08 0008 | 11223344")
	// Close: Terminate-Request, done on the Ack, no error.
	p.l.Close()
	p.expect("ff03 c021 | 05 07 0004")
	p.in("ff03 c021 | 06 07 0004")
	if p.l.Phase() != PhaseDead || p.l.Err() != nil {
		t.Errorf("after Terminate-Ack: phase %d err %v, want dead and no error", p.l.Phase(), p.l.Err())
	}
}

func TestLinkPAPRejected(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.lcpUp("c023", "ff03 c023 | 01 02 000e | 05 616c696365 | 03 707721")
	// Authenticate-Nak "bad": gretun terminates and reports it.
	p.in("ff03 c023 | 03 02 0008 | 03 626164", "ff03 c021 | 05 03 0004")
	p.in("ff03 c021 | 06 03 0004")
	if err := p.l.Err(); !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "bad") {
		t.Errorf("Err = %v, want ErrAuthFailed with the server's message", err)
	}
	select {
	case <-p.l.Done():
	default:
		t.Error("Done not closed after the Terminate-Ack")
	}
}

func TestLinkCHAPMD5(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.lcpUp("c22305")
	// Challenge id 7, 16 bytes 00..0f, name "srv": the response is
	// MD5(07 || "pw!" || challenge) = 909a5fc4…, then our name.
	p.in("ff03 c223 | 01 07 0018 | 10 000102030405060708090a0b0c0d0e0f | 737276",
		"ff03 c223 | 02 07 001a | 10 909a5fc48b113739cfb83853c9c29e4c | 616c696365")
	p.in("ff03 c223 | 03 07 0004", ipcpReq("02", "00000000", "00000000", "00000000"))
}

// MS-CHAPv2 with RFC 2759's example: user "User", password "clientPass".
func TestLinkMSCHAPv2(t *testing.T) {
	for _, c := range []struct {
		name, success string
		ok            bool
	}{
		{"good authenticator", "S=407A5589115FD0D6209F510FE9C04566932CDA56 M=OK", true},
		{"forged authenticator", "S=0000000000000000000000000000000000000000 M=OK", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPeer(t, AuthAny)
			// The peer challenge comes from Magic: RFC 2759's 21402324….
			words := []uint32{0x21402324, 0x255E262A, 0x28295F2B, 0x3A337C7E}
			p.l.cfg.Magic = func() uint32 { w := words[0]; words = words[1:]; return w }
			p.l.magic = 0x11223344
			p.l.cfg.User, p.l.cfg.Password = "User", "clientPass"
			p.lcpUp("c22381")
			//          Challenge id 9, 16 bytes, name "srv"
			p.in("ff03 c223 | 01 09 0018 | 10 5B5D7C7D7B3F2F3E3C2C602132262628 | 737276",
				// Response: 49 bytes: peer challenge, 8 zeros, NT-Response, flags; name "User"
				"ff03 c223 | 02 09 003a | 31 | 21402324255E262A28295F2B3A337C7E | 0000000000000000 |"+
					" 82309ecd8d708b5ea08faa3981cd83544233114a3d85d6df | 00 | 55736572")
			success := "ff03 c223 | 03 09 " + hex.EncodeToString([]byte{0, byte(4 + len(c.success))}) + hex.EncodeToString([]byte(c.success))
			if c.ok {
				p.in(success, ipcpReq("02", "00000000", "00000000", "00000000"))
				return
			}
			p.in(success, "ff03 c021 | 05 02 0004")
			if err := p.l.Err(); !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "authenticator") {
				t.Errorf("Err = %v, want ErrAuthFailed naming the authenticator", err)
			}
		})
	}
}

func TestLinkMSCHAPv2Failure(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.lcpUp("c22381")
	p.l.cfg.Magic = func() uint32 { return 1 }
	p.l.Input(h("ff03 c223 | 01 09 0018 | 10 5B5D7C7D7B3F2F3E3C2C602132262628 | 737276"))
	p.sent = nil
	msg := "E=691 R=1 C=d3f395fa4cec1b693f6d8c85490dcae5 V=0 M=Access denied"
	p.in("ff03 c223 | 04 09 "+hex.EncodeToString([]byte{0, byte(4 + len(msg))})+hex.EncodeToString([]byte(msg)), "ff03 c021 | 05 02 0004")
	if err := p.l.Err(); !errors.Is(err, ErrAuthFailed) || !strings.HasSuffix(err.Error(), "(MS-CHAPv2): Access denied (E=691)") {
		t.Errorf("Err = %v", err)
	}
}

func TestLinkAuthNak(t *testing.T) {
	// MS-CHAPv2 (algorithm 0x81) refused: nak with CHAP-MD5.
	p := newPeer(t, AuthPAP|AuthCHAPMD5)
	p.l.Start()
	p.sent = nil
	p.in("ff03 c021 | 01 01 0009 | 03 05 c22381", "ff03 c021 | 03 01 0009 | 03 05 c22305")
	// With PAP only, CHAP-MD5 is nak'ed with PAP.
	p = newPeer(t, AuthPAP)
	p.l.Start()
	p.sent = nil
	p.in("ff03 c021 | 01 01 0009 | 03 05 c22305", "ff03 c021 | 03 01 0008 | 03 04 c023")
	// An unknown option is rejected alone.
	p.in("ff03 c021 | 01 02 000d | 05 06 01020304 | 0d 03 06",
		"ff03 c021 | 04 02 0007 | 0d 03 06")
	// Our magic number back: a looped link; nak with a fresh one.
	p.in("ff03 c021 | 01 03 000a | 05 06 11223344", "ff03 c021 | 03 03 000a | 05 06 55667788")
}

func TestLinkLCPNakAndReject(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.l.Start()
	p.sent = nil
	// The server naks our magic number: we pick another.
	p.in("ff03 c021 | 03 01 000a | 05 06 00000001", "ff03 c021 | 01 02 000a | 05 06 55667788")
	// It rejects the magic number: we stop asking for it.
	p.in("ff03 c021 | 04 02 000a | 05 06 55667788", "ff03 c021 | 01 03 0004")
	// A stale Nak (old identifier) changes nothing.
	p.in("ff03 c021 | 03 01 000a | 05 06 00000001")
}

func TestLinkTimeout(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.l.Start()
	for i := 0; i < restartTicks*maxConfigure; i++ {
		p.l.Tick()
	}
	if len(p.sent) != maxConfigure {
		t.Errorf("sent %d Configure-Requests, want %d", len(p.sent), maxConfigure)
	}
	if err := p.l.Err(); !errors.Is(err, ErrTimeout) || p.l.Phase() != PhaseDead {
		t.Errorf("after %d unanswered requests: phase %d err %v, want dead with ErrTimeout", maxConfigure, p.l.Phase(), err)
	}
}

func TestLinkPeerTerminates(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.lcpUp("c023", "ff03 c023 | 01 02 000e | 05 616c696365 | 03 707721")
	p.in("ff03 c021 | 05 09 0004", "ff03 c021 | 06 09 0004")
	if !errors.Is(p.l.Err(), ErrTerminated) || p.l.Phase() != PhaseDead {
		t.Errorf("phase %d err %v, want dead with ErrTerminated", p.l.Phase(), p.l.Err())
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in    string
		proto uint16
		info  string
		err   error
	}{
		{"ff03 0021 4500", ProtoIP, "4500", nil},
		{"0021 4500", ProtoIP, "4500", nil},
		{"21 4500", ProtoIP, "4500", nil},
		{"ff03", 0, "", ErrShort},
		{"ff03 00", 0, "", ErrShort},
	} {
		proto, info, err := Decode(h(c.in))
		if proto != c.proto || hex.EncodeToString(info) != c.info || err != c.err {
			t.Errorf("Decode(%s) = %#x %x %v, want %#x %s %v", c.in, proto, info, err, c.proto, c.info, c.err)
		}
	}
}

// FuzzLinkInput: no frame panics a link in any phase, and what it sends
// is a well-formed frame.
func FuzzLinkInput(f *testing.F) {
	for _, s := range []string{
		"ff03 c021 01 01 000e 01 04 0578 03 04 c023 05 06 aabbccdd",
		"ff03 c021 02 01 000a 05 06 11223344",
		"ff03 c023 02 02 0005 00",
		"ff03 c223 01 07 0018 10 000102030405060708090a0b0c0d0e0f 737276",
		"ff03 8021 01 01 000a 03 06 cb007101",
		"ff03 8021 03 03 0010 03 06 cb007102 81 06 cb007135",
		"ff03 c021 09 07 000c aabbccdd 01020304",
		"ff03 c021 05 09 0004",
		"ff03 80fd 01 01 0004",
	} {
		f.Add(uint8(0), h(s))
		f.Add(uint8(3), h(s))
	}
	f.Fuzz(func(t *testing.T, phase uint8, b []byte) {
		p := newPeer(t, AuthAny)
		p.l.cfg.Magic = func() uint32 { return 42 }
		p.l.Start()
		if phase&1 != 0 {
			p.l.lcp.ackedUs, p.l.auth = true, ProtoCHAP
		}
		if phase&2 != 0 {
			p.l.network()
		}
		p.l.Input(b)
		for _, fr := range p.sent {
			if _, info, err := Decode(fr); err != nil {
				t.Fatalf("sent an undecodable frame %x", fr)
			} else if _, err := ParsePacket(info); err != nil {
				t.Fatalf("sent a malformed packet %x: %v", fr, err)
			}
		}
	})
}

// open takes a link with LCP echoes every interval ticks (failure after
// failures) through LCP, PAP and IPCP to opened; the next identifier is 5.
func (p *peer) open(interval, failures int) {
	p.t.Helper()
	p.l.cfg.EchoInterval, p.l.cfg.EchoFailure = interval, failures
	p.lcpUp("c023", "ff03 c023 | 01 02 000e | 05 616c696365 | 03 707721")
	p.in("ff03 c023 | 02 02 0005 | 00", ipcpReq("03", "00000000", "00000000", "00000000"))
	p.in("ff03 8021 | 01 01 000a | 03 06 cb007101", "ff03 8021 | 02 01 000a | 03 06 cb007101")
	p.in("ff03 8021 | 03 03 0016 | 03 06 cb007102 | 81 06 cb007135 | 83 06 cb007135",
		ipcpReq("04", "cb007102", "cb007135", "cb007135"))
	p.in("ff03 8021 | 02 04 0016 | 03 06 cb007102 | 81 06 cb007135 | 83 06 cb007135")
	if !p.l.Opened() {
		p.t.Fatalf("phase %d, want opened", p.l.Phase())
	}
}

// echoes ticks through n echo intervals of 30 and wants one Echo-Request
// (our magic number) at the end of each, identifiers from id on.
func (p *peer) echoes(n int, id byte) {
	p.t.Helper()
	for i := 0; i < n; i++ {
		for k := 0; k < 29; k++ {
			p.l.Tick()
		}
		p.expect()
		p.l.Tick()
		p.expect("ff03 c021 | 09 " + hex.EncodeToString([]byte{id + byte(i)}) + " 0008 | 11223344")
	}
}

// As pppd's lcp-echo-interval 30 lcp-echo-failure 4: four Echo-Requests
// unanswered, and the fifth interval terminates the link with an error.
func TestLinkEchoFailure(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.open(30, 4)
	p.echoes(4, 5)
	for k := 0; k < 29; k++ {
		p.l.Tick()
	}
	p.expect()
	p.l.Tick()
	p.expect("ff03 c021 | 05 09 0004")
	p.in("ff03 c021 | 06 09 0004")
	if err := p.l.Err(); !errors.Is(err, ErrTimeout) || err.Error() != "no answer from the peer: 4 LCP Echo-Requests unanswered" {
		t.Errorf("Err = %v, want ErrTimeout after 4 echoes", err)
	}
	if p.l.Phase() != PhaseDead {
		t.Errorf("phase %d, want dead", p.l.Phase())
	}
}

// An Echo-Reply starts the count again (one carrying our own magic
// number, a looped-back line, does not); lcp-echo-failure 0 never gives up.
func TestLinkEchoReply(t *testing.T) {
	p := newPeer(t, AuthAny)
	p.open(30, 4)
	p.echoes(3, 5)
	p.in("ff03 c021 | 0a 07 0008 | aabbccdd")
	p.echoes(4, 8)
	p.in("ff03 c021 | 0a 0b 0008 | 11223344") // looped back: still 4 pending
	for k := 0; k < 30; k++ {
		p.l.Tick()
	}
	p.expect("ff03 c021 | 05 0c 0004")

	p = newPeer(t, AuthAny)
	p.open(30, 0)
	p.echoes(10, 5)
	if !p.l.Opened() {
		t.Errorf("phase %d with lcp-echo-failure 0, want opened", p.l.Phase())
	}
}
