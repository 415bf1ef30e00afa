package pmtu

import "encoding/binary"

// sum adds b to the running one's complement sum acc (RFC 1071) and
// returns the new sum, not yet folded. b is read as big-endian 16-bit
// words; an odd final byte is padded with zero on the right. Callers
// only pass an odd-length slice last.
func sum(acc uint64, b []byte) uint64 {
	// Adding 32-bit words into a 64-bit accumulator cannot overflow for
	// any packet length, and folding at the end yields the same result
	// as adding 16-bit words (RFC 1071 §2(B), "parallel summation").
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces a running sum to 16 bits with end-around carry.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = (acc >> 16) + (acc & 0xffff)
	}
	return uint16(acc)
}

// checksum is the Internet checksum of b: the complement of the folded
// one's complement sum, ready to store.
func checksum(acc uint64, b []byte) uint16 {
	return ^fold(sum(acc, b))
}

// adjust updates checksum hc after a 16-bit word of the checksummed data
// changes from old to new, without touching the rest of the data
// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
func adjust(hc, old, new uint16) uint16 {
	return ^fold(uint64(^hc) + uint64(^old) + uint64(new))
}
