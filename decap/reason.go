package decap

// Reason names why a packet was dropped. Every drop has one, and each maps
// onto a counter the engine shows like `ip -s tunnel show`.
type Reason uint8

const (
	OK Reason = iota

	// Outer IP header.
	Truncated      // shorter than an IPv4 (IPv6) header
	OuterVersion   // IP version is not 4 (6 for Parse6)
	OuterHeaderLen // IHL below 5 or beyond the packet; an IPv6 extension header cut short, out of place or with an option to discard
	OuterLength    // total (payload) length disagrees with what was received
	OuterFragment  // a fragment: the kernel reassembles before raw sockets, so this is unexpected
	OuterProtocol  // not IPv4 (4), IPv6 (41) or GRE (47) inside; not UDP for ParseUDP
	UDPLength      // the UDP header is cut short or its length disagrees with the packet's (ParseUDP)

	// GRE header.
	GRETruncated // shorter than the GRE header its flags announce
	GREVersion   // version other than 0 (and not PPTP's 1)
	GREPPTP      // version 1: PPTP's enhanced GRE (RFC 2637), not ours
	GREReserved  // a reserved bit of RFC 2784 is set (routing, recursion, flags)
	GREChecksum  // checksum present and wrong
	GREProtocol  // protocol type that is not IPv4, IPv6, Ethernet (0x6558) or keepalive

	// Inner packet.
	InnerTruncated // too short for its IP header (Ethernet header for 0x6558)
	InnerVersion   // IP version does not match the protocol type
	InnerLength    // inner length does not fit what is left
	InnerTTLZero   // inner IPv4 with TTL 0
	InnerNotECT    // outer CE over an inner packet that is not ECN-capable (RFC 6040: drop)
	NotEthernet    // IP (not 0x6558) on a gretap tunnel, whose device takes only Ethernet frames
	NotIP          // an Ethernet frame (0x6558) on a gre tunnel, whose device takes only IP

	// Per-tunnel policy (Receiver.Accept).
	NoTunnel        // no tunnel for (protocol, source, destination, key)
	KeyMismatch     // tunnel expects another key, or none
	ChecksumMissing // tunnel requires checksums (icsum), packet has none
	SeqMissing      // tunnel requires sequence numbers (iseq), packet has none
	OutOfSequence   // sequence number old or duplicate (RFC 2890 serial arithmetic)

	// Keepalive probes refused for reflection (PrepareReflection, the engine).
	ReflectTTL     // inner TTL 1 or less: it would expire here, as when forwarded
	ReflectHeader  // inner IP options or fragment bits, which a probe never has
	ReflectLimited // over the tunnel's reflection rate limit

	// Multipoint tunnels (the engine's neighbour table).
	NoNeighbour // outer source is no neighbour of the tunnel (and it does not learn)
	LearnFull   // a neighbour to learn, but the tunnel's learned table is full

	numReasons
)

// NumReasons is the number of reasons including OK, for counter arrays.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	OK:              "ok",
	Truncated:       "truncated",
	OuterVersion:    "outer-version",
	OuterHeaderLen:  "outer-header-length",
	OuterLength:     "outer-length",
	OuterFragment:   "outer-fragment",
	OuterProtocol:   "outer-protocol",
	UDPLength:       "udp-length",
	GRETruncated:    "gre-truncated",
	GREVersion:      "gre-version",
	GREPPTP:         "gre-pptp",
	GREReserved:     "gre-reserved-bits",
	GREChecksum:     "gre-checksum",
	GREProtocol:     "gre-protocol",
	InnerTruncated:  "inner-truncated",
	InnerVersion:    "inner-version",
	InnerLength:     "inner-length",
	InnerTTLZero:    "inner-ttl-zero",
	InnerNotECT:     "inner-not-ect",
	NotEthernet:     "not-ethernet",
	NotIP:           "ethernet-on-l3",
	NoTunnel:        "no-tunnel",
	KeyMismatch:     "key-mismatch",
	ChecksumMissing: "checksum-missing",
	SeqMissing:      "seq-missing",
	OutOfSequence:   "out-of-sequence",
	ReflectTTL:      "reflect-ttl",
	ReflectHeader:   "reflect-header",
	ReflectLimited:  "reflect-limited",
	NoNeighbour:     "no-neighbour",
	LearnFull:       "learn-full",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// IsChecksumError reports whether r counts as a checksum error (ip -s
// tunnel's CsumErrs, the kernel's rx_crc_errors).
func (r Reason) IsChecksumError() bool { return r == GREChecksum || r == ChecksumMissing }

// IsSequenceError reports whether r counts as out of sequence (ip -s
// tunnel's OutOfSeq, the kernel's rx_fifo_errors).
func (r Reason) IsSequenceError() bool { return r == SeqMissing || r == OutOfSequence }
