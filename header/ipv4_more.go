package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4Fields is what IPv4.Encode writes: a header without options.
//
// (IPv4Fields and Encode are the same as on the wire branch's ipv4.go;
// whichever lands second drops its copy.)
type IPv4Fields struct {
	TOS       uint8
	TotalLen  uint16
	ID        uint16
	FlagsFrag uint16 // IPv4FlagDF, IPv4FlagMF and the offset in 8-byte units
	TTL       uint8
	Protocol  uint8
	Src, Dst  netip.Addr // IPv4 addresses
}

// Encode writes a 20-byte header without options from f, checksum
// included. b must hold IPv4MinLen bytes.
func (b IPv4) Encode(f *IPv4Fields) {
	b[IPv4VersIHL] = 0x45
	b[IPv4TOS] = f.TOS
	binary.BigEndian.PutUint16(b[IPv4TotalLen:], f.TotalLen)
	binary.BigEndian.PutUint16(b[IPv4ID:], f.ID)
	binary.BigEndian.PutUint16(b[IPv4FlagsFrag:], f.FlagsFrag)
	b[IPv4TTL] = f.TTL
	b[IPv4Protocol] = f.Protocol
	s, d := f.Src.As4(), f.Dst.As4()
	copy(b[IPv4Src:], s[:])
	copy(b[IPv4Dst:], d[:])
	b[:IPv4MinLen].UpdateChecksum()
}

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv4) Addrs() []byte { return b[IPv4Src : IPv4Dst+4] }
