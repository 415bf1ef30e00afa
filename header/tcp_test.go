package header

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// synGolden is a TCP SYN with options NOP, NOP, MSS 1460, window scale 7,
// End, laid out field by field.
var synGolden = []byte{
	0x0f, 0xa0, 0x13, 0x88, // source port 4000, destination port 5000
	0xff, 0xff, 0xf0, 0x00, // sequence number
	0x00, 0x00, 0x00, 0x4d, // acknowledgment number 77
	0x80, 0x02, 0x02, 0x00, // data offset 8 words, SYN, window 512
	0xbe, 0xef, 0x00, 0x00, // checksum (not checked here), urgent pointer
	0x01, 0x01, // NOP NOP
	0x02, 0x04, 0x05, 0xb4, // MSS 1460
	0x03, 0x03, 0x07, // window scale 7
	0x00, 0x00, 0x00, // End of Option List, padding
	0xde, 0xad, // data
}

func TestTCPView(t *testing.T) {
	b := TCP(append([]byte(nil), synGolden...))
	if !b.IsValid() || b.SrcPort() != 4000 || b.DstPort() != 5000 || b.SeqNum() != 0xfffff000 || b.AckNum() != 77 ||
		b.HeaderLen() != 32 || b.Flags() != TCPFlagSYN || b.Window() != 512 || b.Checksum() != 0xbeef ||
		len(b.Options()) != 12 || !bytes.Equal(b.Payload(), []byte{0xde, 0xad}) {
		t.Errorf("TCP accessors disagree with the bytes")
	}
	if off, ok := b.MSSOffset(); !ok || off != 24 {
		t.Errorf("MSSOffset = %d, %v; want 24, true", off, ok)
	}
	b.SetSeqNum(1)
	b.SetFlags(TCPFlagSYN | TCPFlagACK)
	b.SetChecksum(0x1234)
	if !bytes.Equal(b[:20], []byte{0x0f, 0xa0, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0x4d, 0x80, 0x12, 0x02, 0x00, 0x12, 0x34, 0, 0}) {
		t.Errorf("setters wrote % x", []byte(b[:20]))
	}

	// gopacket reads the same fields and options.
	var l layers.TCP
	if err := l.DecodeFromBytes(synGolden, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	g := TCP(synGolden)
	if l.SrcPort != layers.TCPPort(g.SrcPort()) || l.DstPort != layers.TCPPort(g.DstPort()) || l.Seq != g.SeqNum() ||
		l.Ack != g.AckNum() || int(l.DataOffset)*4 != g.HeaderLen() || !l.SYN || l.Window != g.Window() || l.Checksum != g.Checksum() {
		t.Errorf("gopacket decodes %+v", l)
	}
	var kinds []uint8
	opts := g.Options()
	for i := 0; ; {
		kind, data, next, ok := NextTCPOption(opts, i)
		if !ok {
			break
		}
		kinds = append(kinds, kind)
		if o := l.Options[len(kinds)-1]; uint8(o.OptionType) != kind || !bytes.Equal(o.OptionData, data) && len(data) > 0 {
			t.Errorf("option %d: kind %d data % x, gopacket %v", len(kinds), kind, data, o)
		}
		i = next
	}
	if !bytes.Equal(kinds, []byte{TCPOptionNOP, TCPOptionNOP, TCPOptionMSS, 3}) {
		t.Errorf("options walked: %v", kinds)
	}

	for _, bad := range []TCP{nil, TCP(synGolden[:19]), TCP(synGolden[:31])} {
		if bad.IsValid() {
			t.Errorf("IsValid(% x) = true", []byte(bad))
		}
	}
	short := append(TCP(nil), synGolden[:20]...)
	short[TCPDataOffset] = 4 << 4
	if short.IsValid() {
		t.Error("a data offset of 4 words is valid")
	}
}

func TestNextTCPOption(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  []byte
		i     int
		kind  uint8
		data  []byte
		next  int
		valid bool
	}{
		{"NOP", []byte{1, 0}, 0, TCPOptionNOP, nil, 1, true},
		{"End", []byte{0, 1}, 0, TCPOptionEnd, nil, 1, false},
		{"end of options", []byte{1}, 1, 0, nil, 1, false},
		{"MSS", []byte{2, 4, 5, 0xb4}, 0, TCPOptionMSS, []byte{5, 0xb4}, 4, true},
		{"no length byte", []byte{1, 2}, 1, 2, nil, 1, false},
		{"length below 2", []byte{2, 1, 0, 0}, 0, 2, nil, 0, false},
		{"length past the end", []byte{2, 4, 5}, 0, 2, nil, 0, false},
		{"SACK permitted, no data", []byte{4, 2}, 0, 4, []byte{}, 2, true},
		{"negative index", []byte{1}, -1, 0, nil, -1, false},
	} {
		kind, data, next, ok := NextTCPOption(c.opts, c.i)
		if kind != c.kind || !bytes.Equal(data, c.data) || next != c.next || ok != c.valid {
			t.Errorf("%s: %d % x %d %v, want %d % x %d %v", c.name, kind, data, next, ok, c.kind, c.data, c.next, c.valid)
		}
	}
}

func TestMSSOffset(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
		off  int
		ok   bool
	}{
		{"first", []byte{2, 4, 5, 0xb4}, 22, true},
		{"odd offset", []byte{1, 2, 4, 5, 0xb4, 0, 0, 0}, 23, true},
		{"MSS of length 3 skipped", []byte{2, 3, 0, 2, 4, 5, 0xb4, 0}, 25, true},
		{"after End", []byte{0, 2, 4, 5, 0xb4, 0, 0, 0}, 0, false},
		{"after a broken option", []byte{8, 0, 2, 4, 5, 0xb4, 0, 0}, 0, false},
		{"none", []byte{1, 1, 1, 1}, 0, false},
		{"no options", nil, 0, false},
	} {
		b := TCP(append(make([]byte, TCPMinLen), c.opts...))
		b[TCPDataOffset] = byte(len(b)/4) << 4
		if off, ok := b.MSSOffset(); off != c.off || ok != c.ok {
			t.Errorf("%s: MSSOffset = %d, %v; want %d, %v", c.name, off, ok, c.off, c.ok)
		}
	}
}

func TestMSSOffsetInvalidHeader(t *testing.T) {
	mss := []byte{2, 4, 5, 0xb4}
	for name, b := range map[string]TCP{
		"short":                TCP(make([]byte, 19)),
		"data offset 4":        append(TCP{12: 4 << 4, 19: 0}, mss...),
		"options past the end": append(TCP{12: 7 << 4, 19: 0}, mss...),
	} {
		if off, ok := b.MSSOffset(); ok {
			t.Errorf("%s: MSSOffset = %d, true", name, off)
		}
	}
}
