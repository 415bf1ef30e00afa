package decap_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/header"
)

// FuzzDecap feeds Parse arbitrary bytes. Whatever they are, Parse must not
// panic or modify them, must return a known Reason, and an accepted
// packet's inner range must lie within the input with Start <= End. The
// receivers and DecapECN then run on what Parse accepted, without panics.
// Parse6, ParseGRE (from the start) and ParseUDP (GRE or IPIP inside UDP,
// encap fou) get the same bytes and are held to the same properties.
func FuzzDecap(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.pkt)
	}
	for _, c := range acceptCases {
		f.Add(c.pkt)
	}
	f.Add(build(47, greHdr(0xb000, 0x86dd, 7, 1), in6))
	f.Add(build(41, in6)) // sit
	for _, c := range parse6Cases {
		f.Add(c.pkt)
	}
	f.Add(build6(0, 24, hopByHop, destEncapLimit, atomicFragment, greHdr(0x8000, 0x86dd, 0, 0), in6))
	f.Add(cat(greHdr(0x3000, 0x0800, 1, 2), in4))
	for _, c := range udpCases {
		f.Add(c.pkt)
	}
	// As Linux's ip6gre and ip6tnl send: the encapsulation limit first.
	f.Add(build6(60, 8, linuxLimit(47, 4), greHdr(0xb000, 0x86dd, 42, 7), in6))
	f.Add(build6(60, -1, linuxLimit(41, 0), in6))
	f.Add(build6(60, 8, linuxLimit(47, 4), greHdr(0, 0x86dd, 0, 0), ipv6Around(local6.AsSlice(), remote6.AsSlice(), 255, greHdr(0, 0, 0, 0))))
	f.Add(build(47, greHdr(0xa000, 0x6558, 7, 0), frame))
	f.Add(cat(greHdr(0x2000, 0x6558, 7, 0), frame))
	f.Add(fou6(greHdr(0x2000, 0x0800, 42, 0), in4))
	f.Add(build6(60, -1, linuxLimit(17, 4), udpHdr(4754, len(in6)), in6))
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data, decap.Parse, 4, 41, 47)
		check(t, data, decap.Parse6, 4, 41, 47)
		check(t, data, func(b []byte, p *decap.Packet) decap.Reason {
			*p = decap.Packet{}
			return decap.ParseGRE(b, 0, p)
		}, 47)
		// The UDP receive path (encap fou): GRE or IPIP after the UDP
		// header of a packet udpsock rebuilt.
		for _, proto := range []uint8{4, 41, 47} {
			check(t, data, func(b []byte, p *decap.Packet) decap.Reason { return decap.ParseUDP(b, proto, p) }, proto)
		}
	})
}

// check runs parse on data and checks FuzzDecap's properties; protos are
// the tunnel protocols it may accept.
func check(t *testing.T, data []byte, parse func([]byte, *decap.Packet) decap.Reason, protos ...uint8) {
	orig := bytes.Clone(data)
	var p decap.Packet
	r := parse(data, &p)
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
	if !slices.Contains(protos, p.Proto) {
		t.Fatalf("accepted outer protocol %d", p.Proto)
	}
	switch {
	case p.Type == header.EtherTypeTEB:
		if p.Kind != decap.Data || p.End-p.Start < header.EthernetHeaderLen {
			t.Fatalf("accepted an Ethernet frame of %d bytes as %v", p.End-p.Start, p.Kind)
		}
	case p.Kind != decap.Keepalive:
		if p.Start == p.End {
			t.Fatal("accepted an empty data packet")
		}
		if v := data[p.Start] >> 4; v != 4 && v != 6 || p.Proto == 4 && v != 4 || p.Proto == 41 && v != 6 {
			t.Fatalf("accepted inner version %d in protocol %d", v, p.Proto)
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
		decap.DecapECNFrame(inner, tos)
	}
}
