package decap_test

import (
	"bytes"
	"testing"

	"github.com/gretun/gretun/decap"
)

// FuzzDecap feeds Parse arbitrary bytes. Whatever they are, Parse must not
// panic or modify them, must return a known Reason, and an accepted
// packet's inner range must lie within the input with Start <= End. The
// receivers and DecapECN then run on what Parse accepted, without panics.
func FuzzDecap(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.pkt)
	}
	for _, c := range acceptCases {
		f.Add(c.pkt)
	}
	f.Add(build(47, greHdr(0xb000, 0x86dd, 7, 1), in6))
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var p decap.Packet
		r := decap.Parse(data, &p)
		if !bytes.Equal(orig, data) {
			t.Fatal("Parse modified its input")
		}
		if int(r) >= decap.NumReasons || r == decap.NoTunnel || r.String() == "unknown" {
			t.Fatalf("Parse returned reason %d", r)
		}
		if r != decap.OK {
			return
		}
		if p.Start < 0 || p.Start > p.End || p.End > len(data) {
			t.Fatalf("inner range [%d:%d] outside a %d-byte input", p.Start, p.End, len(data))
		}
		if p.Proto != 4 && p.Proto != 47 {
			t.Fatalf("accepted outer protocol %d", p.Proto)
		}
		if p.Kind != decap.Keepalive {
			if p.Start == p.End {
				t.Fatal("accepted an empty data packet")
			}
			if v := data[p.Start] >> 4; v != 4 && v != 6 {
				t.Fatalf("accepted inner version %d", v)
			}
		}
		for _, pol := range []decap.Policy{{}, {HasKey: true, Key: p.Key}, {RequireChecksum: true, RequireSequence: true}} {
			rx := decap.NewReceiver(pol)
			for range 2 {
				switch a := rx.Accept(&p); a {
				case decap.OK, decap.KeyMismatch, decap.ChecksumMissing, decap.SeqMissing, decap.OutOfSequence:
				default:
					t.Fatalf("Accept returned %v", a)
				}
			}
		}
		inner := bytes.Clone(data[p.Start:p.End])
		for tos := range uint8(4) {
			decap.DecapECN(inner, tos)
		}
	})
}
