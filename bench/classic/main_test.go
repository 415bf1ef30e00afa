package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var (
	local  = [4]byte{192, 0, 2, 1}
	remote = [4]byte{192, 0, 2, 2}
)

// inner is a minimal IPv4 packet (header only) 198.51.100.1 → 198.51.100.2.
var inner = []byte{
	0x45, 0x00, 0x00, 0x14, // version, IHL, TOS, total length 20
	0x00, 0x01, 0x00, 0x00, // ID, flags, fragment offset
	0x40, 0x01, 0x00, 0x00, // TTL 64, ICMP, checksum (unchecked here)
	198, 51, 100, 1, // source
	198, 51, 100, 2, // destination
}

func TestEncapDecapRoundTrip(t *testing.T) {
	pkt := make([]byte, hdrLen+len(inner))
	copy(pkt[hdrLen:], inner)
	if !encap(pkt, local, remote, 7) {
		t.Fatal("encap refused an IPv4 packet")
	}
	want := []byte{
		0x45, 0x00, 0x00, 0x2c, // IPv4, total length 44
		0x00, 0x07, 0x40, 0x00, // ID 7, DF
		0x40, 0x2f, 0x00, 0x00, // TTL 64, GRE, checksum (checked below)
		192, 0, 2, 1, // source
		192, 0, 2, 2, // destination
		0x00, 0x00, 0x08, 0x00, // GRE: no flags, version 0, IPv4
	}
	got := append([]byte(nil), pkt[:hdrLen]...)
	got[10], got[11] = 0, 0
	if !bytes.Equal(got, want) {
		t.Fatalf("outer header\n got %x\nwant %x", got, want)
	}
	if c := checksum(pkt[:ipv4Len]); c != 0 {
		t.Fatalf("IPv4 header checksum does not verify: %#04x", c)
	}
	// The peer decapsulates: its remote is our local address.
	if out := decap(pkt, local); !bytes.Equal(out, inner) {
		t.Fatalf("decap = %x, want %x", out, inner)
	}
	if out := decap(pkt, remote); out != nil {
		t.Fatal("decap accepted a packet from an address that is not the remote")
	}
}

func TestDecapOptionalFields(t *testing.T) {
	pkt := make([]byte, hdrLen+len(inner))
	copy(pkt[hdrLen:], inner)
	encap(pkt, local, remote, 1)
	// Insert a key and a sequence number after the basic GRE header.
	withKS := append(append(append([]byte(nil), pkt[:hdrLen]...), 0, 0, 0, 42, 0, 0, 0, 9), inner...)
	binary.BigEndian.PutUint16(withKS[2:], uint16(len(withKS)))
	binary.BigEndian.PutUint16(withKS[ipv4Len:], 0x3000) // K and S
	if out := decap(withKS, local); !bytes.Equal(out, inner) {
		t.Fatalf("decap with key+seq = %x, want %x", out, inner)
	}
}

func TestDecapRejects(t *testing.T) {
	good := make([]byte, hdrLen+len(inner))
	copy(good[hdrLen:], inner)
	encap(good, local, remote, 1)
	mutate := func(f func(p []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := map[string][]byte{
		"empty":        nil,
		"short":        good[:10],
		"IPv6 outer":   mutate(func(p []byte) []byte { p[0] = 0x65; return p }),
		"not GRE":      mutate(func(p []byte) []byte { p[9] = 4; return p }),
		"length > buf": mutate(func(p []byte) []byte { binary.BigEndian.PutUint16(p[2:], 2000); return p }),
		"fragment":     mutate(func(p []byte) []byte { p[6] = 0x20; return p }),
		"GRE version":  mutate(func(p []byte) []byte { p[ipv4Len+1] = 1; return p }),
		"GRE routing":  mutate(func(p []byte) []byte { p[ipv4Len] = 0x40; return p }),
		"ethertype":    mutate(func(p []byte) []byte { p[ipv4Len+2] = 0x65; return p }),
		"key no room": mutate(func(p []byte) []byte {
			p[ipv4Len] = 0x20
			binary.BigEndian.PutUint16(p[2:], hdrLen+4)
			return p[:hdrLen+4]
		}),
		"no inner": good[:hdrLen],
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if out := decap(p, local); out != nil {
				t.Fatalf("decap accepted it: %x", out)
			}
		})
	}
}

func TestEncapRejectsNonIP(t *testing.T) {
	pkt := make([]byte, hdrLen+4)
	if encap(pkt, local, remote, 1) {
		t.Fatal("encap accepted an inner packet with version 0")
	}
	if encap(make([]byte, hdrLen), local, remote, 1) {
		t.Fatal("encap accepted an empty inner packet")
	}
}

func FuzzDecap(f *testing.F) {
	pkt := make([]byte, hdrLen+len(inner))
	copy(pkt[hdrLen:], inner)
	encap(pkt, local, remote, 1)
	f.Add(pkt)
	f.Fuzz(func(t *testing.T, p []byte) {
		out := decap(p, local)
		if out == nil {
			return
		}
		if len(out) == 0 {
			t.Fatal("decap returned an empty inner packet")
		}
		for k := range p {
			if &p[k] == &out[0] {
				if k+len(out) > len(p) {
					t.Fatalf("inner packet runs %d bytes past the input", k+len(out)-len(p))
				}
				return
			}
		}
		t.Fatal("decap returned a slice that does not point into its input")
	})
}
