package encap_test

// rfc1071 is the internet checksum computed the slow, obvious way: 16-bit
// words with end-around carry. Tests use it instead of package header so
// that a bug there cannot hide a bug here.
func rfc1071(b []byte) uint16 {
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

// fixIPv4Checksum fills in the header checksum of the IPv4 packet p.
func fixIPv4Checksum(p []byte) {
	hl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	c := rfc1071(p[:hl])
	p[10], p[11] = byte(c>>8), byte(c)
}
