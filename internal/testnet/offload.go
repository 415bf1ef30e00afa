package testnet

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
)

// PartialSender writes IPv4 packets on one device as a Linux sender on the
// same host hands them on when it leaves a checksum to offload
// (CHECKSUM_PARTIAL): through an AF_PACKET socket with a virtio-net header
// (PACKET_VNET_HDR) that names the checksum left unfilled. A guest's virtio
// NIC reaches a tap the same way; across veth the mark survives to the
// receiving namespace.
type PartialSender struct {
	fd  int
	to  unix.SockaddrLinklayer
	src net.HardwareAddr
}

// NewPartialSender opens a sender on device dev of namespace ns, for frames
// to the Ethernet address dst.
func NewPartialSender(ns, dev string, dst net.HardwareAddr) (*PartialSender, error) {
	s := &PartialSender{fd: -1}
	err := InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		s.src = ifi.HardwareAddr
		s.to = unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Protocol: header.Htons(unix.ETH_P_IP)}
		copy(s.to.Addr[:], dst)
		if s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1)
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("testnet: AF_PACKET sender on %s in %s: %w", dev, ns, err)
	}
	return s, nil
}

// Send writes the IPv4 (or IPv6) packet pkt with the checksum at pkt[start+off]
// marked as left to offload, its sum to cover pkt[start:].
func (s *PartialSender) Send(pkt []byte, start, off int) error {
	const vnet, eth = 10, 14
	f := make([]byte, vnet+eth+len(pkt))
	f[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.LittleEndian.PutUint16(f[6:], uint16(eth+start)) // counted from the Ethernet header
	binary.LittleEndian.PutUint16(f[8:], uint16(off))
	copy(f[vnet:], s.to.Addr[:6])
	copy(f[vnet+6:], s.src)
	etype := uint16(unix.ETH_P_IP)
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		etype = unix.ETH_P_IPV6
	}
	binary.BigEndian.PutUint16(f[vnet+12:], etype)
	copy(f[vnet+eth:], pkt)
	to := s.to
	to.Protocol = header.Htons(etype)
	return unix.Sendto(s.fd, f, 0, &to)
}

// Close closes the socket.
func (s *PartialSender) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// MAC returns the Ethernet address of device dev in namespace ns.
func MAC(ns, dev string) (net.HardwareAddr, error) {
	var hw net.HardwareAddr
	err := InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err == nil {
			hw = ifi.HardwareAddr
		}
		return err
	})
	return hw, err
}
