package rawsock

import (
	"encoding/binary"

	"github.com/gretun/gretun/header"
)

// CompleteChecksum is CompleteChecksum for a Conn6's GRE packets, as it
// delivers them (the IPv6 side channel records GRE over IPv6, with or
// without Linux's encapsulation limit option).
func (c *Conn6) CompleteChecksum(pkt []byte) bool { return c.sys.completeChecksum(pkt) }

// OffloadErr is OffloadErr for a Conn6.
func (c *Conn6) OffloadErr() error { return c.sys.offloadErr }

// CompleteChecksum is for a received GRE packet whose checksum did not
// verify. A Linux sender on this host (a VM behind virtio and tap, a
// container behind veth) leaves GRE checksums, and those of TCP or UDP
// inside, for a NIC to compute (CHECKSUM_PARTIAL): the packet crosses to
// this host with the field unfilled, and the kernel's own ip_gre trusts it,
// as it never crossed a wire. A raw socket does not say so. The Conn learns
// it from a side channel (an AF_PACKET receive ring, see offload_linux.go)
// and CompleteChecksum fills in, in pkt, the checksum the kernel marked
// unfilled, at the place it named, as the NIC would have, and reports
// whether it did; the caller then verifies pkt again. A packet that came
// from a wire carries no such mark and is left as it is.
//
// It must be called by ReadBatch's caller, for a packet of the last batch.
func (c *Conn) CompleteChecksum(pkt []byte) bool { return c.sys.completeChecksum(pkt) }

// OffloadErr says why the Conn has no side channel for offloaded checksums
// (nil when it has one, and for IPIP, which has no checksum to offload).
// Without it, GRE checksums left unfilled by a sender on this host fail.
func (c *Conn) OffloadErr() error { return c.sys.offloadErr }

// completeChecksum stores, at pkt[start+off], the Internet checksum of
// pkt[start:] computed with the seed the sender left there (skb_checksum_help
// does the same). For a segmentation-offload packet (gso), whose GRE
// checksum is computed only when it is cut into segments, it then fills the
// GRE checksum, at hl, too. It reports false when the place is outside pkt
// or before GRE.
func completeChecksum(pkt []byte, hl, start, off int, gso bool) bool {
	if start < hl || off < 0 || start+off+2 > len(pkt) {
		return false
	}
	putChecksum(pkt[start:], off)
	if gso && start != hl && hl+header.GRECsum+4 <= len(pkt) && header.GRE(pkt[hl:]).Flags()&header.GREFlagCsum != 0 {
		binary.BigEndian.PutUint32(pkt[hl+header.GRECsum:], 0) // checksum and reserved, as gre_gso_segment
		putChecksum(pkt[hl:], header.GRECsum)
	}
	return true
}

func putChecksum(b []byte, off int) {
	c := header.Checksum(b)
	if c == 0 {
		c = 0xffff // CSUM_MANGLED_0: a UDP checksum of 0 means "none"
	}
	binary.BigEndian.PutUint16(b[off:], c)
}
