// Package header gives byte-slice views of the headers gretun writes and
// reads on the wire (IPv4, IPv6, UDP, GRE) and of those it inspects or
// answers (ICMPv4, ICMPv6, TCP options for MSS clamping, Ethernet II, the
// virtio-net header of TUN offloads), with offset constants under the
// RFC field diagrams, in the style of gVisor's tcpip/header: a view is a
// []byte type with documented accessors, and Encode writes a whole header
// from a Fields struct. Views never copy and never allocate; callers check
// lengths (IsValid or explicit bounds) before using accessors, which
// otherwise panic on a short slice like any index.
//
// RFC 791 (IPv4), RFC 8200 (IPv6), RFC 768 (UDP), RFC 2784 and RFC 2890
// (GRE), RFC 2003 (IP in IP), RFC 8086 (GRE-in-UDP), RFC 1071 (checksum),
// RFC 792 and RFC 1191 (ICMP), RFC 4443 (ICMPv6), RFC 9293 (TCP), virtio
// 1.x section 5.1.6 (virtio-net header).
package header
