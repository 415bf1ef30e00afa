package header

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"
)

// virtioNetHdr is struct virtio_net_hdr as C lays it out in memory on this
// host: the reference for the view's offsets and byte order.
type virtioNetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func TestVirtioNetView(t *testing.T) {
	f := VirtioNetFields{Flags: VirtioNetFlagNeedsCsum, GSOType: VirtioNetGSOTCPv4, HdrLen: 0x0142, GSOSize: 1448, CsumStart: 20, CsumOffset: 16}
	// Field by field, 16-bit fields in host byte order.
	golden := make([]byte, VirtioNetHeaderLen)
	golden[0] = 1 // flags: NEEDS_CSUM
	golden[1] = 1 // gso_type: TCPV4
	binary.NativeEndian.PutUint16(golden[2:], 0x0142)
	binary.NativeEndian.PutUint16(golden[4:], 1448)
	binary.NativeEndian.PutUint16(golden[6:], 20)
	binary.NativeEndian.PutUint16(golden[8:], 16)

	b := VirtioNet(make([]byte, VirtioNetHeaderLen))
	b.Encode(&f)
	if !bytes.Equal(b, golden) {
		t.Fatalf("Encode:\n got % x\nwant % x", []byte(b), golden)
	}
	if !b.IsValid() || b.Flags() != f.Flags || b.GSOType() != f.GSOType || b.HdrLen() != f.HdrLen ||
		b.GSOSize() != f.GSOSize || b.CsumStart() != f.CsumStart || b.CsumOffset() != f.CsumOffset {
		t.Errorf("VirtioNet accessors disagree with the bytes")
	}
	if VirtioNet(golden[:9]).IsValid() {
		t.Error("9 bytes is not a virtio-net header")
	}

	// The C struct in memory holds the same bytes.
	c := virtioNetHdr{f.Flags, f.GSOType, f.HdrLen, f.GSOSize, f.CsumStart, f.CsumOffset}
	if unsafe.Sizeof(c) != VirtioNetHeaderLen {
		t.Fatalf("struct virtio_net_hdr is %d bytes", unsafe.Sizeof(c))
	}
	if mem := unsafe.Slice((*byte)(unsafe.Pointer(&c)), VirtioNetHeaderLen); !bytes.Equal(mem, golden) {
		t.Errorf("C layout % x, view % x", mem, golden)
	}

	b.Encode(&VirtioNetFields{})
	if !bytes.Equal(b, make([]byte, VirtioNetHeaderLen)) {
		t.Errorf("zero fields encode as % x", []byte(b))
	}
}
