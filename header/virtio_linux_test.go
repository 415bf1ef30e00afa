package header

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestVirtioNetConstants checks the flag and GSO type values against the
// kernel's (include/uapi/linux/virtio_net.h, as x/sys/unix has them).
func TestVirtioNetConstants(t *testing.T) {
	for name, c := range map[string][2]int{
		"NEEDS_CSUM": {VirtioNetFlagNeedsCsum, unix.VIRTIO_NET_HDR_F_NEEDS_CSUM},
		"GSO_NONE":   {VirtioNetGSONone, unix.VIRTIO_NET_HDR_GSO_NONE},
		"GSO_TCPV4":  {VirtioNetGSOTCPv4, unix.VIRTIO_NET_HDR_GSO_TCPV4},
		"GSO_UDP":    {VirtioNetGSOUDP, unix.VIRTIO_NET_HDR_GSO_UDP},
		"GSO_TCPV6":  {VirtioNetGSOTCPv6, unix.VIRTIO_NET_HDR_GSO_TCPV6},
		"GSO_UDP_L4": {VirtioNetGSOUDPL4, unix.VIRTIO_NET_HDR_GSO_UDP_L4},
		"GSO_ECN":    {VirtioNetGSOECN, unix.VIRTIO_NET_HDR_GSO_ECN},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, the kernel's is %#x", name, c[0], c[1])
		}
	}
}
