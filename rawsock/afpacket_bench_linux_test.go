package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/testnet"
)

// BenchmarkUnderlaySend answers issue 7's question "does an AF_PACKET send
// path beat the raw IP socket?" for gretun's outer packets. It is a
// measurement, not an integration: the engine keeps using Conn.
//
// Every sub-benchmark sends the same batches of 64 GRE packets (20-byte
// IPv4 header, 4-byte GRE header with protocol 0x0800, a 1476-byte inner
// packet of zeros: 1500 bytes, a full-MTU tunnel packet) from namespace a
// (192.0.2.1) to b (192.0.2.2) over veth, while a goroutine drains b's raw
// GRE socket (rawsock.Open(47)), so the receiver's cost is in the picture
// as in real use. The sub-benchmarks differ only in how a sends:
//
//   - raw-sendmmsg: Conn.WriteBatch (IP_HDRINCL raw socket, sendmmsg);
//     the kernel routes, resolves the neighbour and runs netfilter.
//   - afpacket-sendmmsg-qdisc-bypass: an AF_PACKET SOCK_RAW socket bound
//     to the veth, PACKET_QDISC_BYPASS=1, whole Ethernet frames (dst = the
//     peer's MAC) sent with sendmmsg(2) through unix.Syscall6, since
//     x/sys/unix has no Sendmmsg wrapper.
//   - afpacket-txring: the same socket with a PACKET_TX_RING (TPACKET_V2)
//     of 64 frames: fill the ring, one send(2) per batch.
//
// Metrics: sent-pkts/s, recv-pkts/s (what b's socket read), and
// cpu-ns/pkt, the whole process's user+system CPU time (getrusage
// RUSAGE_SELF, so sender, receiver goroutine and the softirq work charged
// to them) per packet sent. Run as root:
//
//	go test -run '^$' -bench UnderlaySend -benchtime 3s -count 3 ./rawsock
func BenchmarkUnderlaySend(b *testing.B) {
	b.Run("raw-sendmmsg", func(b *testing.B) { benchUnderlay(b, underlayRaw) })
	b.Run("afpacket-sendmmsg-qdisc-bypass", func(b *testing.B) { benchUnderlay(b, underlayPacketMmsg) })
	b.Run("afpacket-txring", func(b *testing.B) { benchUnderlay(b, underlayPacketRing) })
}

const (
	underlayBatch    = 64
	underlayInnerLen = 1476
	ethHeaderLen     = 14
)

type underlayKind int

const (
	underlayRaw underlayKind = iota
	underlayPacketMmsg
	underlayPacketRing
)

// underlaySender sends one batch and reports how many packets left.
type underlaySender interface {
	send() (int, error)
	close()
}

func benchUnderlay(b *testing.B, kind underlayKind) {
	_, a, bb := newPair(b, "1500")
	rx := openIn(b, bb, ProtoGRE)

	// The outer packet: IPv4 (valid header checksum, DF) + basic GRE + zeros.
	gre := make([]byte, 4+underlayInnerLen)
	binary.BigEndian.PutUint16(gre[2:], 0x0800)
	pkts := make([][]byte, underlayBatch)
	for i := range pkts {
		pkts[i] = outer(ProtoGRE, addrA, addrB, uint16(i+1), true, gre)
	}

	var tx underlaySender
	var err error
	switch kind {
	case underlayRaw:
		tx = rawSender{c: openIn(b, a, ProtoGRE), pkts: pkts}
	default:
		var peerMAC net.HardwareAddr
		err = testnet.InNS(bb, func() error {
			ifc, err := net.InterfaceByName("ub")
			if err == nil {
				peerMAC = ifc.HardwareAddr
			}
			return err
		})
		if err != nil {
			b.Fatalf("peer MAC: %v", err)
		}
		err = testnet.InNS(a, func() error {
			ifc, err := net.InterfaceByName("ua")
			if err != nil {
				return err
			}
			frames := make([][]byte, len(pkts))
			for i, p := range pkts {
				frames[i] = ethFrame(peerMAC, ifc.HardwareAddr, p)
			}
			if kind == underlayPacketMmsg {
				tx, err = newPacketMmsgSender(ifc.Index, frames)
			} else {
				tx, err = newPacketRingSender(ifc.Index, frames)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(tx.close)

	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bufs, sizes := newBufs(underlayBatch, 2048)
		for {
			n, err := rx.ReadBatch(bufs, sizes)
			if err != nil {
				return
			}
			for i := range n {
				if sizes[i] == len(pkts[0]) {
					received.Add(1)
				}
			}
		}
	}()
	// Warm up (neighbour entry, receive loop) and prove the path delivers.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < underlayBatch {
		if time.Now().After(deadline) {
			rx.Close()
			wg.Wait()
			b.Fatalf("warm-up: b received %d of %d packets in 5s", received.Load(), underlayBatch)
		}
		if _, err := tx.send(); err != nil && !errors.Is(err, syscall.ENOBUFS) {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	// Let the warm-up packets drain, then count from zero.
	time.Sleep(50 * time.Millisecond)
	received.Store(0)

	b.ReportAllocs()
	cpu0 := processCPU()
	start := time.Now()
	var sent int64
	for b.Loop() {
		n, err := tx.send()
		if err != nil && !errors.Is(err, syscall.ENOBUFS) {
			b.Fatal(err)
		}
		sent += int64(n)
	}
	elapsed := time.Since(start)
	// Let the receiver finish what is queued (the CPU it spends on that
	// belongs to these packets too).
	for last := int64(-1); received.Load() != last; {
		last = received.Load()
		time.Sleep(20 * time.Millisecond)
	}
	cpu := processCPU() - cpu0
	rx.Close()
	wg.Wait()
	got := received.Load()
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "sent-pkts/s")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "recv-pkts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(max(sent, 1)), "cpu-ns/pkt")
}

// processCPU returns the user+system CPU time of the whole process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ethFrame prepends an Ethernet II header (ethertype IPv4) to pkt.
func ethFrame(dst, src net.HardwareAddr, pkt []byte) []byte {
	f := make([]byte, ethHeaderLen+len(pkt))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
	copy(f[ethHeaderLen:], pkt)
	return f
}

type rawSender struct {
	c    *Conn
	pkts [][]byte
}

func (s rawSender) send() (int, error) { return s.c.WriteBatch(s.pkts) }
func (s rawSender) close()             { s.c.Close() }

// openPacket opens an AF_PACKET SOCK_RAW socket for sending only
// (protocol 0: no receive hook), bound to ifindex, with the qdisc bypassed
// and a 4 MiB send buffer like Conn's. It runs in the caller's namespace.
func openPacket(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind AF_PACKET socket to ifindex %d: %w", ifindex, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set PACKET_QDISC_BYPASS: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBufBytes) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBufBytes)
	}
	return fd, nil
}

// packetMmsgSender sends prebuilt frames with sendmmsg(2); the message
// headers, iovecs and the link-layer address are built once.
type packetMmsgSender struct {
	fd     int
	frames [][]byte
	iovs   []unix.Iovec
	msgs   []unix.Mmsghdr
	addr   *unix.RawSockaddrLinklayer
}

func newPacketMmsgSender(ifindex int, frames [][]byte) (*packetMmsgSender, error) {
	fd, err := openPacket(ifindex)
	if err != nil {
		return nil, err
	}
	s := &packetMmsgSender{
		fd:     fd,
		frames: frames,
		iovs:   make([]unix.Iovec, len(frames)),
		msgs:   make([]unix.Mmsghdr, len(frames)),
		addr: &unix.RawSockaddrLinklayer{
			Family:   unix.AF_PACKET,
			Protocol: header.Htons(unix.ETH_P_IP),
			Ifindex:  int32(ifindex),
		},
	}
	for i, f := range frames {
		s.iovs[i].Base = &f[0]
		s.iovs[i].SetLen(len(f))
		h := &s.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(s.addr))
		h.Namelen = unix.SizeofSockaddrLinklayer
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	return s, nil
}

// send mirrors Conn.WriteBatch: on a short count it retries from the
// first unsent frame; an error is for that frame, and later ones are not
// tried.
func (s *packetMmsgSender) send() (int, error) {
	sent := 0
	for sent < len(s.msgs) {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&s.msgs[sent])), uintptr(len(s.msgs)-sent), 0, 0, 0)
		if errno != 0 {
			return sent, fmt.Errorf("sendmmsg on AF_PACKET socket: %w", errno)
		}
		if r == 0 {
			return sent, errors.New("sendmmsg on AF_PACKET socket sent nothing")
		}
		sent += int(r)
	}
	runtime.KeepAlive(s.frames)
	return sent, nil
}

func (s *packetMmsgSender) close() { unix.Close(s.fd) }

// TPACKET_V2 transmit ring geometry: 64 frames of 2048 bytes in two
// 64 KiB blocks, one frame per packet of a batch.
const (
	ringFrameSize = 2048
	ringBlockSize = 1 << 16
	ringBlocks    = 2
	ringFrames    = ringBlocks * ringBlockSize / ringFrameSize
	// ringDataOff is where the kernel expects the frame to start within a
	// ring slot for TX without PACKET_TX_HAS_OFF: TPACKET2_HDRLEN minus
	// sizeof(struct sockaddr_ll), i.e. the aligned tpacket2_hdr.
	ringDataOff = (int(unsafe.Sizeof(unix.Tpacket2Hdr{})) + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
)

// packetRingSender fills a PACKET_TX_RING and flushes it with one send(2),
// which, blocking, returns once the kernel has sent every frame and handed
// the slots back.
type packetRingSender struct {
	fd    int
	ring  []byte
	lens  []uint32
	count int
}

func newPacketRingSender(ifindex int, frames [][]byte) (*packetRingSender, error) {
	if len(frames) > ringFrames {
		return nil, fmt.Errorf("tx ring holds %d frames, batch has %d", ringFrames, len(frames))
	}
	fd, err := openPacket(ifindex)
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (*packetRingSender, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return fail("set PACKET_VERSION TPACKET_V2", err)
	}
	req := unix.TpacketReq{Block_size: ringBlockSize, Block_nr: ringBlocks, Frame_size: ringFrameSize, Frame_nr: ringFrames}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return fail("set PACKET_TX_RING", err)
	}
	ring, err := unix.Mmap(fd, 0, ringBlocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap tx ring", err)
	}
	s := &packetRingSender{fd: fd, ring: ring, count: len(frames)}
	// The frames never change, so they are copied in once; each batch
	// only hands the slots back to the kernel.
	for i, f := range frames {
		if ringDataOff+len(f) > ringFrameSize {
			s.close()
			return nil, fmt.Errorf("frame of %d bytes does not fit a %d-byte ring slot", len(f), ringFrameSize)
		}
		copy(ring[i*ringFrameSize+ringDataOff:], f)
		s.lens = append(s.lens, uint32(len(f)))
	}
	return s, nil
}

func (s *packetRingSender) hdr(i int) *unix.Tpacket2Hdr {
	return (*unix.Tpacket2Hdr)(unsafe.Pointer(&s.ring[i*ringFrameSize]))
}

func (s *packetRingSender) send() (int, error) {
	for i := range s.count {
		h := s.hdr(i)
		if st := atomic.LoadUint32(&h.Status); st != unix.TP_STATUS_AVAILABLE {
			return 0, fmt.Errorf("tx ring slot %d not available (status %#x)", i, st)
		}
		h.Len = s.lens[i]
		atomic.StoreUint32(&h.Status, unix.TP_STATUS_SEND_REQUEST)
	}
	r, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, 0, 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("send on AF_PACKET tx ring: %w", errno)
	}
	// send(2) returns the bytes queued; count the slots the kernel took.
	n := 0
	for i := range s.count {
		switch atomic.LoadUint32(&s.hdr(i).Status) {
		case unix.TP_STATUS_AVAILABLE:
			n++
		case unix.TP_STATUS_WRONG_FORMAT:
			return n, fmt.Errorf("tx ring slot %d: kernel rejected the frame", i)
		}
	}
	if n < s.count && r == 0 {
		return n, errors.New("send on AF_PACKET tx ring sent nothing")
	}
	return n, nil
}

func (s *packetRingSender) close() {
	if s.ring != nil {
		unix.Munmap(s.ring)
		s.ring = nil
	}
	unix.Close(s.fd)
}
