package header

// IPVersion is the version nibble of the IP packet b (4 or 6 for the
// packets gretun carries), or -1 when b is empty. It reads one byte.
func IPVersion(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0] >> 4)
}
