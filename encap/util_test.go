package encap_test

import "github.com/gretun/gretun/internal/refsum"

// rfc1071 is the slow, obvious RFC 1071 checksum: an independent reference.
var rfc1071 = refsum.RFC1071

// fixIPv4Checksum fills in the header checksum of the IPv4 packet p.
func fixIPv4Checksum(p []byte) {
	hl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	c := rfc1071(p[:hl])
	p[10], p[11] = byte(c>>8), byte(c)
}
