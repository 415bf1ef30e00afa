// Command classic is the yardstick `gretun bench` measures gretun against:
// a userspace GRE tunnel written the classic way, one packet per system
// call. It opens a plain TUN device (IFF_TUN|IFF_NO_PI, no offloads) and a
// raw IPv4 socket for protocol 47, waits in poll() on both, and moves one
// packet at a time: read from the TUN, prepend IPv4+GRE, sendto; recvfrom
// the raw socket, strip the headers, write to the TUN.
//
// It is deliberately plain: neither slowed down nor optimized, so the ratio
// gretun/classic says what batching and offloads buy. It is not a tunnel
// to use: no keys, no checksums, no sequence numbers, no keepalives, one
// peer. The harness sets the device's MTU, addresses and link state.
//
// Usage: classic -name gre0 -local 192.0.2.1 -remote 192.0.2.2
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// Header sizes: the outer IPv4 header without options and the basic GRE
// header (RFC 2784) without key, checksum or sequence number.
const (
	ipv4Len = 20
	greLen  = 4
	hdrLen  = ipv4Len + greLen
)

// GRE protocol types (EtherType values) of the inner packet.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86DD
)

func main() {
	name := flag.String("name", "gre0", "TUN device name")
	local := flag.String("local", "", "local underlay IPv4 address")
	remote := flag.String("remote", "", "remote underlay IPv4 address")
	flag.Parse()
	if err := run(*name, *local, *remote); err != nil {
		fmt.Fprintln(os.Stderr, "classic:", err)
		os.Exit(1)
	}
}

func run(name, local, remote string) error {
	l, err := netip.ParseAddr(local)
	if err != nil || !l.Is4() {
		return fmt.Errorf("-local %q is not an IPv4 address", local)
	}
	r, err := netip.ParseAddr(remote)
	if err != nil || !r.Is4() {
		return fmt.Errorf("-remote %q is not an IPv4 address", remote)
	}
	tun, err := openTUN(name)
	if err != nil {
		return err
	}
	raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_GRE)
	if err != nil {
		return fmt.Errorf("raw GRE socket: %w", err)
	}
	// We write the outer IPv4 header ourselves.
	if err := unix.SetsockoptInt(raw, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return fmt.Errorf("IP_HDRINCL: %w", err)
	}
	if err := unix.Bind(raw, &unix.SockaddrInet4{Addr: l.As4()}); err != nil {
		return fmt.Errorf("bind raw socket to %s: %w", l, err)
	}
	return loop(tun, raw, l.As4(), r.As4())
}

// openTUN creates TUN device name without packet information or offloads.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUN name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return fd, nil
}

// loop moves packets until a descriptor fails. Errors on a single packet
// (a full socket buffer, a packet the kernel refuses) drop that packet, as
// a router would.
func loop(tun, raw int, local, remote [4]byte) error {
	fds := []unix.PollFd{
		{Fd: int32(tun), Events: unix.POLLIN},
		{Fd: int32(raw), Events: unix.POLLIN},
	}
	out := make([]byte, 65535)
	in := make([]byte, 65535)
	dst := &unix.SockaddrInet4{Addr: remote}
	var id uint16
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return errors.New("TUN device closed")
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			n, err := unix.Read(tun, out[hdrLen:])
			if err != nil && err != unix.EAGAIN && err != unix.EINTR {
				return fmt.Errorf("read TUN: %w", err)
			}
			if n > 0 {
				id++
				pkt := out[:hdrLen+n]
				if encap(pkt, local, remote, id) {
					unix.Sendto(raw, pkt, 0, dst) // a failed send is a dropped packet
				}
			}
		}
		if fds[1].Revents&unix.POLLIN != 0 {
			n, _, err := unix.Recvfrom(raw, in, 0)
			if err != nil && err != unix.EAGAIN && err != unix.EINTR {
				return fmt.Errorf("recvfrom raw socket: %w", err)
			}
			if n > 0 {
				if inner := decap(in[:n], remote); inner != nil {
					unix.Write(tun, inner) // a failed write is a dropped packet
				}
			}
		}
	}
}

// encap fills pkt[:hdrLen] with the outer IPv4 and GRE headers for the inner
// packet at pkt[hdrLen:]. It reports false for an inner packet that is
// neither IPv4 nor IPv6.
func encap(pkt []byte, local, remote [4]byte, id uint16) bool {
	if len(pkt) <= hdrLen || len(pkt) > 65535 {
		return false
	}
	var proto uint16
	switch pkt[hdrLen] >> 4 {
	case 4:
		proto = etherIPv4
	case 6:
		proto = etherIPv6
	default:
		return false
	}
	ip := pkt[:ipv4Len]
	ip[0] = 0x45 // version 4, 5 words
	ip[1] = 0    // TOS
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF, as the kernel's GRE does
	ip[8] = 64                                 // TTL
	ip[9] = unix.IPPROTO_GRE
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], local[:])
	copy(ip[16:20], remote[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	gre := pkt[ipv4Len:hdrLen]
	binary.BigEndian.PutUint16(gre[0:], 0) // no C, K, S bits; version 0
	binary.BigEndian.PutUint16(gre[2:], proto)
	return true
}

// decap returns the inner packet of an IPv4+GRE packet from remote, or nil
// if the packet is not one this tunnel accepts.
func decap(pkt []byte, remote [4]byte) []byte {
	if len(pkt) < ipv4Len || pkt[0]>>4 != 4 {
		return nil
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < ipv4Len || total < ihl || total > len(pkt) {
		return nil
	}
	if pkt[9] != unix.IPPROTO_GRE || [4]byte(pkt[12:16]) != remote {
		return nil
	}
	if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
		return nil // a fragment; the classic loop does not reassemble
	}
	gre := pkt[ihl:total]
	if len(gre) < greLen {
		return nil
	}
	flags := binary.BigEndian.Uint16(gre[0:])
	if flags&0x4fff != 0 { // routing bit, reserved bits or a version other than 0
		return nil
	}
	n := greLen
	for _, bit := range []uint16{0x8000, 0x2000, 0x1000} { // checksum, key, sequence
		if flags&bit != 0 {
			n += 4
		}
	}
	if len(gre) <= n {
		return nil
	}
	switch binary.BigEndian.Uint16(gre[2:]) {
	case etherIPv4, etherIPv6:
		return gre[n:]
	}
	return nil
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
