// Package testpkt holds the inner packets the encap and decap tests carry,
// laid out field by field, so both packages test against the same bytes.
// Callers copy before they change one.
package testpkt

// In4 is an ICMP echo request 198.51.100.1 -> 203.0.113.1, TOS 0, DF, TTL 64.
var In4 = []byte{
	0x45, 0x00, 0x00, 0x1c, // version 4, IHL 5, TOS 0 (Not-ECT), total length 28
	0xab, 0xcd, 0x40, 0x00, // ID 0xabcd, flags DF, fragment offset 0
	0x40, 0x01, 0x28, 0xdd, // TTL 64, protocol ICMP, header checksum
	0xc6, 0x33, 0x64, 0x01, // source 198.51.100.1
	0xcb, 0x00, 0x71, 0x01, // destination 203.0.113.1
	0x08, 0x00, 0xf7, 0xff, // ICMP echo request, code 0, checksum
	0x00, 0x00, 0x00, 0x00, // identifier 0, sequence 0
}

// In6 is an ICMPv6 echo request 2001:db8::1 -> 2001:db8::2, traffic class
// 0xb9 (EF, ECT(1)), hop limit 33.
var In6 = []byte{
	0x6b, 0x90, 0x00, 0x00, // version 6, traffic class 0xb9 (EF, ECT(1)), flow label 0
	0x00, 0x08, 0x3a, 0x21, // payload length 8, next header ICMPv6, hop limit 33
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination 2001:db8::2
	0x80, 0x00, 0x7b, 0xb8, 0x00, 0x00, 0x00, 0x00, // echo request
}

// Frame is an Ethernet frame carrying an ARP request (RFC 826) from
// 02:00:00:00:00:01, 198.51.100.1, for 198.51.100.2, broadcast: what a
// gretap tunnel carries first. 42 bytes: no padding, as a tunnel sends it.
var Frame = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source 02:00:00:00:00:01 (locally administered)
	0x08, 0x06, // EtherType ARP
	0x00, 0x01, 0x08, 0x00, // hardware Ethernet, protocol IPv4
	0x06, 0x04, 0x00, 0x01, // address lengths 6 and 4, request
	0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sender MAC
	0xc6, 0x33, 0x64, 0x01, // sender 198.51.100.1
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: unknown
	0xc6, 0x33, 0x64, 0x02, // target 198.51.100.2
}
