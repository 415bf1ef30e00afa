// Package refsum is the internet checksum (RFC 1071) computed the slow,
// obvious way — 16-bit words with end-around carry — for tests: an
// independent reference against which package header's fast checksum and
// everything built on it are checked, so that a bug there cannot hide.
package refsum

// RFC1071 returns the internet checksum of b.
func RFC1071(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		s = s&0xffff + s>>16
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
