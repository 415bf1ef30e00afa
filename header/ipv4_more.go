package header

import "encoding/binary"

// IPv4Fields are the fields of an IPv4 header without options, for Encode.
type IPv4Fields struct {
	TOS       uint8
	TotalLen  uint16
	ID        uint16
	FlagsFrag uint16 // IPv4FlagDF, IPv4FlagMF and the offset in 8-byte units
	TTL       uint8
	Protocol  uint8
	Src, Dst  [4]byte
}

// Encode writes a 20-byte header (version 4, IHL 5) from f, with its
// header checksum.
func (b IPv4) Encode(f *IPv4Fields) {
	_ = b[IPv4MinLen-1]
	b[IPv4VersIHL] = 4<<4 | IPv4MinLen/4
	b[IPv4TOS] = f.TOS
	binary.BigEndian.PutUint16(b[IPv4TotalLen:], f.TotalLen)
	binary.BigEndian.PutUint16(b[IPv4ID:], f.ID)
	binary.BigEndian.PutUint16(b[IPv4FlagsFrag:], f.FlagsFrag)
	b[IPv4TTL] = f.TTL
	b[IPv4Protocol] = f.Protocol
	copy(b[IPv4Src:IPv4Src+4], f.Src[:])
	copy(b[IPv4Dst:IPv4Dst+4], f.Dst[:])
	b.UpdateChecksum()
}

// Addrs is the source and destination address, contiguous, as PseudoSum
// takes them; it aliases b.
func (b IPv4) Addrs() []byte { return b[IPv4Src : IPv4Dst+4] }
