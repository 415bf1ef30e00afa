package socks5

import (
	"bytes"
	"testing"
)

// FuzzReadRequest: no input makes the parser panic or read past what it
// was given; a request it accepts encodes back to the bytes it read
// (names that are addresses aside, which it reads as addresses).
func FuzzReadRequest(f *testing.F) {
	for _, seed := range [][]byte{
		{5, 1, 0, 1, 198, 51, 100, 2, 0, 80},
		{5, 3, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb},
		append(append([]byte{5, 1, 0, 3, 16}, "www.example.test"...), 0, 80),
		{5, 1, 0, 3, 0, 0, 80},
		{5, 1, 0, 9},
		{4, 1, 0, 1},
		{5, 1, 0, 3, 255},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadRequest(r)
		if err != nil {
			return
		}
		used := append([]byte(nil), b[:len(b)-r.Len()]...)
		used[2] = 0 // RSV, which the parser ignores
		again := AppendRequest(nil, req)
		if req.Dest.Name != "" && !bytes.Equal(again, used) {
			t.Fatalf("% x read as %+v, encodes as % x", used, req, again)
		}
		if req2, err := ReadRequest(bytes.NewReader(again)); err != nil || req2 != req {
			t.Fatalf("%+v encodes as % x, reads back as %+v, %v", req, again, req2, err)
		}
	})
}

// FuzzParseUDP: the UDP ASSOCIATE header parser never panics, and its
// data is the tail of its input after a header that encodes back.
func FuzzParseUDP(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 198, 51, 100, 2, 0, 53, 'h', 'i'})
	f.Add([]byte{0, 0, 1, 1, 198, 51, 100, 2, 0, 53})
	f.Add(append(append([]byte{0, 0, 0, 3, 9}, "dns.test."...), 0, 53))
	f.Add([]byte{0, 0, 0, 4, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, data, err := ParseUDP(b)
		if err != nil {
			return
		}
		if len(data) > len(b) || !bytes.Equal(data, b[len(b)-len(data):]) {
			t.Fatalf("data % x is not the tail of % x", data, b)
		}
		if a2, data2, err := ParseUDP(AppendUDP(nil, a, data)); err != nil || a2 != a || !bytes.Equal(data2, data) {
			t.Fatalf("%+v % x does not round-trip: %+v % x %v", a, data, a2, data2, err)
		}
	})
}
