package keepalive

import (
	"encoding/binary"
	"github.com/gretun/gretun/header"
	"net/netip"

	"github.com/dchest/siphash"
)

// Sizes of the inner keepalive packet that BuildInner writes.
const (
	// IPv4HeaderLen is the inner IPv4 header: 20 bytes, no options.
	IPv4HeaderLen = header.IPv4MinLen
	// GREHeaderLen is the inner GRE header: no checksum, key or sequence.
	GREHeaderLen = header.GREMinLen
	// PayloadLen is the authenticated payload after the inner GRE header.
	PayloadLen = 24
	// InnerLen is the whole inner packet; buf passed to BuildInner must
	// hold at least this many bytes.
	InnerLen = IPv4HeaderLen + GREHeaderLen + PayloadLen
	// InnerLen6 is the whole inner packet of an IPv6 tunnel (ip6gre),
	// whose keepalive travels in an IPv6 header.
	InnerLen6 = header.IPv6HeaderLen + GREHeaderLen + PayloadLen
)

// Payload layout, offsets from the start of the payload (see the package
// documentation for the diagram).
const (
	magicOff     = 0
	versionOff   = 4
	timestampOff = 8
	macOff       = 16 // the MAC covers bytes [0, macOff)

	payloadVersion = 1
)

// magic identifies a gretun keepalive payload: "gtka".
var magic = [4]byte{'g', 't', 'k', 'a'}

// innerTTL is the inner header's TTL: Cisco uses 255 so the reply survives
// any path the far end routes it over.
const innerTTL = 255

// writePayload fills p[:PayloadLen] with magic, version, timestamp and MAC.
func writePayload(p []byte, k0, k1, ts uint64) {
	_ = p[PayloadLen-1]
	copy(p[magicOff:], magic[:])
	p[versionOff] = payloadVersion
	p[versionOff+1], p[versionOff+2], p[versionOff+3] = 0, 0, 0
	binary.BigEndian.PutUint64(p[timestampOff:], ts)
	binary.LittleEndian.PutUint64(p[macOff:], siphash.Hash(k0, k1, p[:macOff]))
}

// payloadShape classifies a payload before any cryptography: the cheap
// checks that tell "not one of ours at all" from "claims to be ours".
func payloadShape(p []byte) Verdict {
	switch {
	case len(p) == 0:
		return RejectedNoPayload
	case len(p) < PayloadLen:
		return RejectedMalformed
	case [4]byte(p[magicOff:]) != magic || p[versionOff] != payloadVersion:
		return RejectedMalformed
	}
	return Accepted
}

// macOK reports whether the payload's MAC verifies with the key. The
// comparison is of two uint64 values, which takes the same time whatever
// they hold.
func macOK(p []byte, k0, k1 uint64) bool {
	return binary.LittleEndian.Uint64(p[macOff:]) == siphash.Hash(k0, k1, p[:macOff])
}

// writeInner writes the inner IPv4 and GRE headers for a keepalive from
// remote to local into b[:IPv4HeaderLen+GREHeaderLen].
func writeInner(b []byte, local, remote netip.Addr, id uint16) {
	_ = b[IPv4HeaderLen+GREHeaderLen-1]
	header.IPv4(b).Encode(&header.IPv4Fields{
		TOS:       0,
		TotalLen:  InnerLen,
		ID:        id,
		FlagsFrag: 0, // DF clear
		TTL:       innerTTL,
		Protocol:  header.ProtoGRE,
		Src:       remote,
		Dst:       local,
	})
	g := b[IPv4HeaderLen:]
	binary.BigEndian.PutUint16(g[header.GREFlags:], 0) // no flags, version 0
	binary.BigEndian.PutUint16(g[header.GREProtocol:], header.EtherTypeKeepalive)
}

// writeInner6 is writeInner for an IPv6 tunnel: an IPv6 header from remote
// to local (hop limit 255, next header GRE) and the GRE header.
func writeInner6(b []byte, local, remote netip.Addr) {
	_ = b[header.IPv6HeaderLen+GREHeaderLen-1]
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLen: GREHeaderLen + PayloadLen,
		NextHeader: header.ProtoGRE,
		HopLimit:   innerTTL,
		Src:        remote,
		Dst:        local,
	})
	g := b[header.IPv6HeaderLen:]
	binary.BigEndian.PutUint16(g[header.GREFlags:], 0)
	binary.BigEndian.PutUint16(g[header.GREProtocol:], header.EtherTypeKeepalive)
}

// ipv4 returns a as an IPv4 address, accepting IPv4-mapped IPv6 addresses.
func ipv4(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	return a, a.Is4()
}
