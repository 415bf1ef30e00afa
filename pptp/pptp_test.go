package pptp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

// An Outgoing-Call-Reply as pptpd sends it: length 32, control message,
// magic, type 8 | call ID 0x0080, peer call ID 0x1235, result 1 (Connected),
// error 0, cause 0 | speed | window 64, delay 0 | channel.
var outgoingReply = "0020 0001 1a2b3c4d 0008 0000 | 0080 1235 01 00 0000 | 05f5e100 | 0040 0000 | 00000000"

func TestParseOutgoingReply(t *testing.T) {
	m, err := ParseMessage(h(outgoingReply))
	if err != nil {
		t.Fatal(err)
	}
	r := OutgoingReplyOf(m)
	if m.Type != OutgoingCallReply || r.CallID != 0x80 || r.PeerCallID != 0x1235 || r.Result.Code != 1 || r.Window != 64 {
		t.Errorf("got type %d %+v", m.Type, r)
	}
}

func TestMessagesGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		m    Message
		want string
	}{
		{"echo", Echo(0x01020304), "0010 0001 1a2b3c4d 0005 0000 | 01020304"},
		{"clear", ClearRequest(0x1235), "0010 0001 1a2b3c4d 000c 0000 | 1235 0000"},
		{"stop", StopRequest(), "0010 0001 1a2b3c4d 0003 0000 | 01 00 0000"},
		{"set-link-info", SetLink(0x80, 0xffffffff, 0), "0018 0001 1a2b3c4d 000f 0000 | 0080 0000 ffffffff 00000000"},
		{"outgoing", OutgoingRequest(0x1235, 7, 64), "00a8 0001 1a2b3c4d 0007 0000 | 1235 0007 | 00000960 | 00989680 | 00000003 | 00000003 | 0040 0000 | 0000 0000" + strings.Repeat("00", 128)},
	} {
		if got := hex.EncodeToString(c.m.Marshal()); got != hex.EncodeToString(h(c.want)) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, hex.EncodeToString(h(c.want)))
		}
	}
	sr := StartRequest("host").Marshal()
	if len(sr) != 156 || !bytes.Equal(sr[:16], h("009c 0001 1a2b3c4d 0001 0000 | 0100 0000")) || string(sr[28:32]) != "host" {
		t.Errorf("Start-Control-Connection-Request: %x", sr)
	}
	if r := EchoReplyTo(Echo(9)).Marshal(); hex.EncodeToString(r) != hex.EncodeToString(h("0014 0001 1a2b3c4d 0006 0000 | 00000009 01 00 0000")) {
		t.Errorf("Echo-Reply: %x", r)
	}
}

func TestParseMessageErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"0010 0001 1a2b3c4e 0005 0000 01020304", ErrBadMagic},
		{"0010 0002 1a2b3c4d 0005 0000 01020304", ErrNotCtrl},
		{"0011 0001 1a2b3c4d 0005 0000 01020304", ErrBadLength},          // length field says 17
		{"0014 0001 1a2b3c4d 0005 0000 01020304 00000000", ErrBadLength}, // echo request of 20 bytes
		{"000c 0001 1a2b3c4d 0008 0000", ErrBadLength},                   // a reply with no body
	} {
		if _, err := ParseMessage(h(c.in)); !errors.Is(err, c.want) {
			t.Errorf("ParseMessage(%s) = %v, want %v", c.in, err, c.want)
		}
	}
	if _, err := ReadMessage(bytes.NewReader(h("ffff 0001"))); !errors.Is(err, ErrBadLength) {
		t.Errorf("ReadMessage of a 65535-byte message: %v, want ErrBadLength", err)
	}
}

func TestGRE(t *testing.T) {
	// S and A, key: payload 4 bytes, call 0x1235; seq 7, ack 5; payload; padding.
	pkt := h("3081 880b | 0004 1235 | 00000007 | 00000005 | ff03c021 | 0000")
	g, err := ParseGRE(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if g.CallID != 0x1235 || !g.HasSeq || g.Seq != 7 || !g.HasAck || g.Ack != 5 || hex.EncodeToString(g.Payload) != "ff03c021" {
		t.Errorf("ParseGRE = %+v", g)
	}
	out := make([]byte, GREMaxLen+4)
	n := PutGRE(out, &g, 4)
	copy(out[n:], g.Payload)
	if !bytes.Equal(out[:n+4], pkt[:n+4]) {
		t.Errorf("PutGRE = %x, want %x", out[:n+4], pkt[:n+4])
	}
	// An acknowledgement alone: A, no S, no payload.
	ackOnly := h("2081 880b 0000 1235 00000009")
	if g, err := ParseGRE(ackOnly); err != nil || g.HasSeq || !g.HasAck || g.Ack != 9 || len(g.Payload) != 0 {
		t.Errorf("ack only: %+v %v", g, err)
	}
	for _, c := range []struct {
		in   string
		want error
	}{
		{"3081 880b 0004", ErrGREShort},
		{"3001 880b 0010 1235 00000001 ff03", ErrGREShort}, // payload length beyond the packet
		{"3000 0800 0004 1235 00000001", ErrGREVersion},
		{"3001 0800 0004 1235 00000001", ErrGREProto},
		{"1001 880b 0000 1235 00000001", ErrGREFlags},          // no K
		{"b001 880b 0000 1235 00000001 00000000", ErrGREFlags}, // C
		{"3001 880b 0000 1235", ErrGREShort},                   // S without a sequence number
	} {
		if _, err := ParseGRE(h(c.in)); err != c.want {
			t.Errorf("ParseGRE(%s) = %v, want %v", c.in, err, c.want)
		}
	}
}

func TestSeqAfter(t *testing.T) {
	for _, c := range []struct {
		a, b uint32
		want bool
	}{{2, 1, true}, {1, 1, false}, {1, 2, false}, {0, 0xffffffff, true}, {0xffffffff, 0, false}} {
		if got := SeqAfter(c.a, c.b); got != c.want {
			t.Errorf("SeqAfter(%d, %d) = %v", c.a, c.b, got)
		}
	}
}

// FuzzParseGRE: never panics, the payload lies inside the input, and a
// parsed header written back parses the same.
func FuzzParseGRE(f *testing.F) {
	f.Add(h("3081 880b 0004 1235 00000007 00000005 ff03c021 0000"))
	f.Add(h("2081 880b 0000 1235 00000009"))
	f.Add(h("3001 880b 0001 1235 00000001 21"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGRE(b)
		if err != nil {
			return
		}
		if len(g.Payload) > 0 && (cap(b)-cap(g.Payload) < 8 || cap(b)-cap(g.Payload)+len(g.Payload) > len(b)) {
			t.Fatalf("payload outside the input")
		}
		out := make([]byte, GREMaxLen+len(g.Payload))
		n := PutGRE(out, &g, len(g.Payload))
		copy(out[n:], g.Payload)
		g2, err := ParseGRE(out)
		if err != nil || g2.CallID != g.CallID || g2.Seq != g.Seq || g2.Ack != g.Ack || !bytes.Equal(g2.Payload, g.Payload) {
			t.Fatalf("round trip: %+v %v, want %+v", g2, err, g)
		}
	})
}

// FuzzReadMessage: no byte stream panics the control parser or its
// accessors.
func FuzzReadMessage(f *testing.F) {
	f.Add(h(outgoingReply))
	f.Add(Echo(1).Marshal())
	f.Add(StartRequest("x").Marshal())
	f.Add(h("0094 0001 1a2b3c4d 000d 0000" + strings.Repeat("00", 136)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			m, err := ReadMessage(r)
			if err != nil {
				return
			}
			OutgoingReplyOf(m)
			StartReplyOf(m)
			DisconnectCallID(m)
			EchoReplyTo(m)
		}
	})
}
