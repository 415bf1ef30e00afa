package header

import "encoding/binary"

// virtio-net header, struct virtio_net_hdr of include/uapi/linux/virtio_net.h
// (virtio 1.x §5.1.6), which a TUN device opened with IFF_VNET_HDR and an
// AF_PACKET socket with PACKET_VNET_HDR put in front of each packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     flags     |   gso_type    |            hdr_len            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           gso_size            |          csum_start           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          csum_offset          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The 16-bit fields are in host byte order, as legacy virtio has them:
// the kernel writes them so unless TUNSETVNETLE or TUNSETVNETBE asks for
// another order (gretun never does), and af_packet's vio_le() is the
// host's order too.
const (
	VirtioNetFlags      = 0
	VirtioNetGSOType    = 1
	VirtioNetHdrLen     = 2 // offset of hdr_len; the header's own length is VirtioNetHeaderLen
	VirtioNetGSOSize    = 4
	VirtioNetCsumStart  = 6
	VirtioNetCsumOffset = 8
	VirtioNetHeaderLen  = 10

	// VirtioNetFlagNeedsCsum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the checksum
	// at CsumStart+CsumOffset holds only the pseudo-header sum and the
	// sum of everything from CsumStart on is still to be folded in
	// (CHECKSUM_PARTIAL).
	VirtioNetFlagNeedsCsum = 1

	// GSO types (VIRTIO_NET_HDR_GSO_*): what the packet is a super-packet
	// of, to be cut into segments of GSOSize.
	VirtioNetGSONone  = 0
	VirtioNetGSOTCPv4 = 1
	VirtioNetGSOUDP   = 3 // UFO: IPv4 fragments, no longer produced
	VirtioNetGSOTCPv6 = 4
	VirtioNetGSOUDPL4 = 5 // UDP segmentation (UDP_SEGMENT)
	VirtioNetGSOECN   = 0x80
)

// VirtioNet is a view of a virtio-net header. Accessors need len(b) >=
// VirtioNetHeaderLen.
type VirtioNet []byte

// IsValid reports whether b holds a whole header.
func (b VirtioNet) IsValid() bool { return len(b) >= VirtioNetHeaderLen }

// Flags holds VirtioNetFlagNeedsCsum.
func (b VirtioNet) Flags() uint8 { return b[VirtioNetFlags] }

// GSOType is VirtioNetGSONone for a single packet, else the kind of
// super-packet.
func (b VirtioNet) GSOType() uint8 { return b[VirtioNetGSOType] }

// HdrLen is the length of the headers every segment repeats, as the
// sender put it: only a hint (the forwarding path may set it to a whole
// first segment).
func (b VirtioNet) HdrLen() uint16 { return binary.NativeEndian.Uint16(b[VirtioNetHdrLen:]) }

// GSOSize is the payload length of each segment but the last.
func (b VirtioNet) GSOSize() uint16 { return binary.NativeEndian.Uint16(b[VirtioNetGSOSize:]) }

// CsumStart is where, from the start of the packet (after this header),
// the checksummed transport header begins.
func (b VirtioNet) CsumStart() uint16 { return binary.NativeEndian.Uint16(b[VirtioNetCsumStart:]) }

// CsumOffset is where the checksum field is, from CsumStart.
func (b VirtioNet) CsumOffset() uint16 { return binary.NativeEndian.Uint16(b[VirtioNetCsumOffset:]) }

// VirtioNetFields are the fields of a virtio-net header, for Encode.
type VirtioNetFields struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Encode writes all fields; the zero Fields say "one packet, checksums
// complete".
func (b VirtioNet) Encode(f *VirtioNetFields) {
	_ = b[VirtioNetHeaderLen-1]
	b[VirtioNetFlags] = f.Flags
	b[VirtioNetGSOType] = f.GSOType
	binary.NativeEndian.PutUint16(b[VirtioNetHdrLen:], f.HdrLen)
	binary.NativeEndian.PutUint16(b[VirtioNetGSOSize:], f.GSOSize)
	binary.NativeEndian.PutUint16(b[VirtioNetCsumStart:], f.CsumStart)
	binary.NativeEndian.PutUint16(b[VirtioNetCsumOffset:], f.CsumOffset)
}
