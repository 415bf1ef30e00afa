package header

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b to the running one's-complement sum initial (RFC 1071) and
// returns the new unfolded sum. An odd trailing byte is padded with zero, so
// only the last piece of a checksummed range may have an odd length.
//
// It reads eight bytes at a time: the internet checksum is independent of
// the word size used to add it up. The main loop keeps one carry chain
// running across 64-byte blocks (ADC on amd64); while the carry is 1 the
// accumulator is at most 2^64-2, so adding the carry back never overflows.
func Sum(b []byte, initial uint64) uint64 {
	acc := initial
	var carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[32:40]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[40:48]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[48:56]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[56:64]), carry)
		b = b[64:]
	}
	acc += carry
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		acc += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		acc += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		acc += carry
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, 0)
		acc += carry
	}
	return acc
}

// Fold folds a running sum to 16 bits and complements it: the value that
// goes into a checksum field.
func Fold(sum uint64) uint16 {
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return ^uint16(sum)
}

// Checksum is the internet checksum of b.
func Checksum(b []byte) uint16 { return Fold(Sum(b, 0)) }

// Adjust updates a stored checksum hc after one 16-bit word of the
// checksummed data changed from old to new, without reading the rest
// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
func Adjust(hc, old, new uint16) uint16 {
	return Fold(uint64(^hc) + uint64(^old) + uint64(new))
}

// PseudoSum is the running sum of the pseudo-header of an upper-layer
// packet of n bytes and protocol proto (RFC 768, RFC 793, RFC 8200 §8.1):
// addrs is the source and destination address as they stand in the IP
// header, contiguous.
func PseudoSum(addrs []byte, proto uint8, n int) uint64 {
	return Sum(addrs, uint64(proto)+uint64(n))
}
