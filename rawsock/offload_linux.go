package rawsock

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gretun/gretun/header"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// offloadRing is the side channel of a GRE Conn that learns which received
// packets carry a checksum their sender left to offload (CHECKSUM_PARTIAL,
// see CompleteChecksum): an AF_PACKET socket on every device with a
// TPACKET_V2 receive ring. A classic BPF filter lets only unfragmented GRE
// packets with the checksum bit through, and only their first bytes, so the
// kernel's work per packet is a filter run and a small copy into shared
// memory, and reading a record costs no system call.
//
// It never decides which packets are accepted: AF_PACKET sees packets
// before netfilter and routing, so a record only tells how to complete the
// checksum of a packet the raw socket delivers, byte for byte the same in
// its first csumMatch bytes. Records of packets the raw socket never
// delivers grow old and are released.
type offloadRing struct {
	fd   int
	mem  []byte
	next uint // the oldest frame not yet released to the kernel
	v6   bool // records IPv6 packets, for a Conn6
	// waited is how long searches waited for late records in the second
	// that started at epoch (csumWaitBudget bounds it).
	epoch  time.Time
	waited time.Duration
	onWait func() // for tests: called as a search waits
}

const (
	csumFrameSize = 256 // tpacket2_hdr, sockaddr_ll, virtio header and about 150 bytes of packet
	csumBlockSize = 1 << 16
	csumFrames    = 1024 // 256 KiB
	csumPerBlock  = csumBlockSize / csumFrameSize
	// csumKeep is how many records are kept unreleased: the raw socket's
	// queue can hold that many newer packets before their record is gone.
	csumKeep = csumFrames / 2
	// csumSlack: records this much older than a matched one stay, for
	// packets received on another CPU whose order the raw socket saw
	// differently.
	csumSlack = 16
	// csumGap: a search goes on past this many frames the kernel still
	// owns in a row. CPUs fill frames at once, each its own, and a frame
	// still being written can sit before a finished one (the record of
	// the very packet the raw socket just delivered).
	csumGap = 64
	// csumWait is how long a search waits for a record not yet written,
	// csumWaitBudget how long all searches may wait in a second.
	csumWait       = 200 * time.Microsecond
	csumWaitBudget = 2 * time.Millisecond
	// csumMatch bytes of the IPv4 packet must be the same in the record
	// and in the packet the raw socket delivered: the IPv4 header (its
	// identification, length and header checksum), the GRE header and the
	// start of the inner packet.
	csumMatch = 96

	// Frame header offsets (struct tpacket2_hdr).
	tpStatus  = 0
	tpSnaplen = 8
	tpMac     = 12
	tpNet     = 14
)

// csumFilter passes unfragmented GRE packets with the checksum bit (RFC 2784
// C) set. Offsets are from the network header (SKF_NET_OFF), whatever the
// device's link layer.
var csumFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: netOff + header.IPv4Protocol, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ProtoGRE, SkipTrue: 9},
	bpf.LoadAbsolute{Off: netOff + header.IPv4FlagsFrag, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: header.IPv4FlagMF | header.IPv4FragOffset, SkipTrue: 7},
	bpf.LoadAbsolute{Off: netOff + header.IPv4VersIHL, Size: 1},
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f}, // IHL, in 4-byte words
	bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
	bpf.TAX{},
	bpf.LoadIndirect{Off: netOff + header.GREFlags, Size: 1}, // GRE flags, first byte
	bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: header.GREFlagCsum >> 8, SkipTrue: 1},
	bpf.RetConstant{Val: csumFrameSize},
	bpf.RetConstant{Val: 0},
}

// csumFilter6 is csumFilter over IPv6: GRE with the checksum bit right
// after the fixed header, or after one 8-byte destination options header
// (Linux's encapsulation limit). A fragment has a fragment header there and
// does not pass.
var csumFilter6 = []bpf.Instruction{
	bpf.LoadAbsolute{Off: netOff + header.IPv6NextHeader, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: ProtoGRE, SkipTrue: 5},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: header.IPv6DestOpts, SkipTrue: 8},
	bpf.LoadAbsolute{Off: netOff + header.IPv6HeaderLen, Size: 2}, // its next header and length
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ProtoGRE << 8, SkipTrue: 6},
	bpf.LoadConstant{Dst: bpf.RegX, Val: header.IPv6HeaderLen + header.IPv6ExtMinLen},
	bpf.Jump{Skip: 1},
	bpf.LoadConstant{Dst: bpf.RegX, Val: header.IPv6HeaderLen},
	bpf.LoadIndirect{Off: netOff + header.GREFlags, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: header.GREFlagCsum >> 8, SkipTrue: 1},
	bpf.RetConstant{Val: csumFrameSize},
	bpf.RetConstant{Val: 0},
}

// netOff is SKF_NET_OFF as the uint32 bpf.LoadAbsolute takes.
const netOff = 1<<32 - 0x100000

// openOffloadRing opens the side channel for IPv4 GRE, or for IPv6 GRE
// when v6.
func openOffloadRing(v6 bool) (*offloadRing, error) {
	filter, proto := csumFilter, uint16(unix.ETH_P_IP)
	if v6 {
		filter, proto = csumFilter6, unix.ETH_P_IPV6
	}
	raw, err := bpf.Assemble(filter)
	if err != nil {
		return nil, fmt.Errorf("assemble filter: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	r := &offloadRing{fd: fd, v6: v6}
	fail := func(what string, err error) (*offloadRing, error) {
		r.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: (*unix.SockFilter)(unsafe.Pointer(&raw[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fail("attach filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return fail("PACKET_VERSION", err)
	}
	// The virtio header says where the unfilled checksum is.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	req := unix.TpacketReq{Block_size: csumBlockSize, Block_nr: csumFrames / csumPerBlock, Frame_size: csumFrameSize, Frame_nr: csumFrames}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("PACKET_RX_RING", err)
	}
	r.mem, err = unix.Mmap(fd, 0, csumFrames/csumPerBlock*csumBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap ring", err)
	}
	// Bound last, so that nothing arrives before the filter is in place.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: header.Htons(proto)}); err != nil {
		return fail("bind", err)
	}
	return r, nil
}

func (r *offloadRing) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	unix.Close(r.fd)
}

func (r *offloadRing) frame(i uint) []byte {
	i %= csumFrames
	off := i/csumPerBlock*csumBlockSize + i%csumPerBlock*csumFrameSize
	return r.mem[off : off+csumFrameSize : off+csumFrameSize]
}

func status(f []byte) *uint32 { return (*uint32)(unsafe.Pointer(&f[tpStatus])) }

func isUser(f []byte) bool { return atomic.LoadUint32(status(f))&unix.TP_STATUS_USER != 0 }

// releaseTo gives the frames before end back to the kernel, up to the
// first one the kernel is still writing: released while written, it would
// come back marked ours behind r.next and stop the ring for good.
func (r *offloadRing) releaseTo(end uint) {
	for ; r.next != end && isUser(r.frame(r.next)); r.next++ {
		atomic.StoreUint32(status(r.frame(r.next)), unix.TP_STATUS_KERNEL)
	}
}

// trim keeps at most csumKeep records, so that the kernel always has room
// for new ones. It costs one load when the ring is not that full.
func (r *offloadRing) trim() {
	for isUser(r.frame(r.next+csumKeep)) && isUser(r.frame(r.next)) {
		r.releaseTo(r.next + 1)
	}
}

// complete looks for pkt's record and, when the record says its sender left
// a checksum to offload, fills that checksum in pkt as the NIC would have.
// Over IPv6 pkt is as Conn6 delivers it: a rebuilt fixed header, then GRE;
// the record is the packet as sent, perhaps with an encapsulation limit
// option before GRE. Their addresses and what follows GRE must match.
func (r *offloadRing) complete(pkt []byte) bool {
	found, ok := r.search(pkt)
	if found {
		return ok
	}
	// The raw socket can deliver a packet before the kernel has written
	// its record (seen from a VM: about one offloaded packet in a
	// thousand, found again up to tens of microseconds later). Wait a
	// little for it, within a budget: packets from a wire with a bad
	// checksum never get a record and must not stall the receive path.
	now := time.Now()
	if now.Sub(r.epoch) > time.Second {
		r.epoch, r.waited = now, 0
	}
	if r.waited >= csumWaitBudget {
		return false
	}
	// At least one look again, however late this goroutine runs.
	deadline := now.Add(min(csumWait, csumWaitBudget-r.waited))
	for {
		runtime.Gosched()
		if r.onWait != nil {
			r.onWait()
		}
		if found, ok = r.search(pkt); found || !time.Now().Before(deadline) {
			break
		}
	}
	r.waited += time.Since(now)
	return ok
}

// search looks for pkt's record (found) and completes pkt's checksum as
// it says (ok).
func (r *offloadRing) search(pkt []byte) (found, ok bool) {
	pktGRE := header.IPv6HeaderLen
	if !r.v6 {
		if len(pkt) < header.IPv4MinLen {
			return true, false
		}
		pktGRE = header.IPv4(pkt).HeaderLen()
	}
	for i, gap := uint(0), 0; i < csumFrames && gap < csumGap; i++ {
		f := r.frame(r.next + i)
		if !isUser(f) {
			gap++
			continue
		}
		gap = 0
		mac, net := int(binary.NativeEndian.Uint16(f[tpMac:])), int(binary.NativeEndian.Uint16(f[tpNet:]))
		snap := int(binary.NativeEndian.Uint32(f[tpSnaplen:]))
		if snap == 0 || mac < header.VirtioNetHeaderLen || net < mac || mac+snap > len(f) {
			continue // released below, or consumed
		}
		rec := f[net : mac+snap]
		recGRE, skip := 0, 0 // over IPv4 the whole records are compared
		if r.v6 {
			if len(rec) < header.IPv6HeaderLen+header.IPv6ExtMinLen || len(pkt) < header.IPv6HeaderLen ||
				string(rec[header.IPv6Src:header.IPv6HeaderLen]) != string(pkt[header.IPv6Src:header.IPv6HeaderLen]) {
				continue
			}
			recGRE = header.IPv6HeaderLen
			if rec[header.IPv6NextHeader] == header.IPv6DestOpts {
				recGRE += header.IPv6ExtMinLen
			}
			skip = header.IPv6HeaderLen
		}
		n := min(len(rec)-recGRE, len(pkt)-skip, csumMatch)
		if n < 24 || string(rec[recGRE:recGRE+n]) != string(pkt[skip:skip+n]) {
			continue
		}
		// Consumed: a later copy of the same bytes needs its own record.
		binary.NativeEndian.PutUint32(f[tpSnaplen:], 0)
		if i > csumSlack {
			r.releaseTo(r.next + i - csumSlack)
		}
		for f := r.frame(r.next); isUser(f) && binary.NativeEndian.Uint32(f[tpSnaplen:]) == 0; f = r.frame(r.next) {
			r.releaseTo(r.next + 1)
		}
		vh := header.VirtioNet(f[mac-header.VirtioNetHeaderLen : mac])
		if vh.Flags()&header.VirtioNetFlagNeedsCsum == 0 {
			return true, false // its checksum was complete: a wire packet
		}
		// csum_start counts from the link-layer header here, and over
		// IPv6 from where the record's GRE header is to where pkt's is.
		start := int(vh.CsumStart()) - (net - mac)
		if r.v6 {
			start += pktGRE - recGRE
		}
		return true, completeChecksum(pkt, pktGRE, start, int(vh.CsumOffset()), vh.GSOType() != header.VirtioNetGSONone)
	}
	return false, false
}
