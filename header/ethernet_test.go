package header

import (
	"bytes"
	"net"
	"testing"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestEthernetView(t *testing.T) {
	dst := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	src := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	golden := []byte{
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
		0x08, 0x00, // EtherType IPv4
		0x45, // payload
	}
	b := Ethernet(make([]byte, len(golden)))
	b.Encode(dst, src, EtherTypeIPv4)
	b[EthernetHeaderLen] = 0x45
	if !bytes.Equal(b, golden) {
		t.Fatalf("Encode:\n got % x\nwant % x", []byte(b), golden)
	}
	if !b.IsValid() || !bytes.Equal(b.Dst(), dst) || !bytes.Equal(b.Src(), src) || b.EtherType() != EtherTypeIPv4 ||
		!bytes.Equal(b.Payload(), []byte{0x45}) {
		t.Errorf("Ethernet accessors disagree with the bytes")
	}
	if Ethernet(golden[:13]).IsValid() {
		t.Error("13 bytes is not an Ethernet header")
	}

	sb := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{},
		&layers.Ethernet{DstMAC: dst, SrcMAC: src, EthernetType: layers.EthernetTypeIPv6})
	if err != nil {
		t.Fatal(err)
	}
	b.Encode(dst, src, EtherTypeIPv6)
	// gopacket pads the frame to the 60-byte minimum.
	if got := sb.Bytes()[:EthernetHeaderLen]; !bytes.Equal(got, b[:EthernetHeaderLen]) {
		t.Errorf("gopacket:\n got % x\nwant % x", got, []byte(b[:EthernetHeaderLen]))
	}
}

// TestHtons: the protocol field of a sockaddr_ll holds the EtherType's
// bytes in network order, whatever the machine's byte order.
func TestHtons(t *testing.T) {
	v := Htons(EtherTypeIPv4)
	b := (*[2]byte)(unsafe.Pointer(&v))
	if b[0] != 0x08 || b[1] != 0x00 {
		t.Errorf("Htons(0x0800) lies in memory as % x, want 08 00", b[:])
	}
}
