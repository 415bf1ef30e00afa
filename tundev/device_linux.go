// Package tundev opens Linux TUN devices with offloads (IFF_VNET_HDR with
// TSO, USO and checksum offload) for tunnels that are many and mostly idle.
//
// It reads packets straight into the caller's buffer and splits TCP and UDP
// super-packets itself, and writes single packets itself. Batches of more
// than one packet are written through wireguard's tun package, whose
// writer coalesces them (GRO) into super-packets; that writer keeps about
// 700 KB of coalescing tables per device, so it is made for a device on its
// first batch only. A thousand tunnels that carry pings and keepalives stay
// small; the one that carries a TCP stream gets wireguard's GRO.
//
// A Device is a tun.Device, so the engine and its fakes share one interface.
// Link events are not reported (Events never delivers): the engine watches
// the links of all its tunnels with one netlink socket.
package tundev

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/netconf"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
)

// Offloads the device asks of the kernel: what wireguard's writer expects,
// so that the two agree on the device they share. USO needs Linux 6.2.
const (
	tcpOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	udpOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6
)

// maxRead is the largest read a TUN device returns: a 64 KiB super-packet
// and its virtio header, and for a TAP the Ethernet header and two VLAN
// tags in front.
const maxRead = VirtioHdrLen + maxL2 + 65535

// Steps turns offloads off for every device opened afterwards, to measure
// what each buys (`gretun bench`'s step rows, GRETUN_BENCH_OFF): NoTSO
// asks the kernel for segmented packets (only checksum offload) and writes
// one by one, NoCoalesce writes batches one by one instead of through
// wireguard's coalescing writer. Not a user setting.
var Steps struct{ NoTSO, NoCoalesce bool }

// Device is one TUN device. Read is for one goroutine at a time; Write may
// be called from several.
type Device struct {
	file   *os.File
	name   string
	tap    bool // Ethernet frames (OpenTAP), not IP packets
	closed atomic.Bool

	spare   []byte        // the tail of a read that overflows the caller's buffer, from spares
	pending int           // bytes in spare: a super-packet the last drain read, split next
	iov     [2]unix.Iovec // Read's; here so that it does not escape per call

	groMu sync.Mutex
	gro   atomic.Pointer[tun.Device] // wireguard's coalescing writer, once made
	noGRO atomic.Bool                // making it failed: write one by one
}

var _ tun.Device = (*Device)(nil)

// spares lends Read its overflow buffer (64 KiB) for the length of a call,
// or until the super-packet kept in it is split: an idle device holds none.
var spares = sync.Pool{New: func() any { return new([maxRead]byte) }}

// Open creates (or attaches to) the TUN device name with offloads.
func Open(name string) (*Device, error) { return open(name, unix.IFF_TUN) }

// OpenTAP creates (or attaches to) the TAP device name with offloads: an
// ordinary Ethernet device with a MAC address the kernel picks, which can
// join a bridge (gretap). It reads and writes whole Ethernet frames behind
// the same virtio header; super-frames are split as a TUN's super-packets,
// each segment with the frame's Ethernet header (and VLAN tags) in front.
// Batches are written frame by frame: wireguard's coalescing writer reads
// IP packets, not frames.
func OpenTAP(name string) (*Device, error) {
	d, err := open(name, unix.IFF_TAP)
	if d != nil {
		d.tap = true
	}
	return d, err
}

func open(name string, kind uint16) (*Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("/dev/net/tun does not exist")
		}
		return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(kind | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("TUNSETIFF", err)
	}
	offloads := tcpOffloads
	if Steps.NoTSO {
		offloads = unix.TUN_F_CSUM
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("TUNSETOFFLOAD", err)
	}
	if !Steps.NoTSO {
		_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tcpOffloads|udpOffloads) // best effort: Linux ≥ 6.2
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	d := &Device{file: os.NewFile(uintptr(fd), "/dev/net/tun"), name: ifr.Name()}
	// wireguard's writer would turn TSO back on (and without it has
	// nothing to coalesce into): no offloads means writes one by one.
	d.noGRO.Store(Steps.NoTSO || Steps.NoCoalesce)
	return d, nil
}

// File is the device's file, for ioctls such as TUNSETCARRIER and polling.
func (d *Device) File() *os.File { return d.file }

// Name is the interface name the kernel gave the device.
func (d *Device) Name() (string, error) { return d.name, nil }

// Events never delivers: see the package comment.
func (d *Device) Events() <-chan tun.Event { return nil }

// BatchSize is how many packets one Read may return (the segments of one
// super-packet) and how many Write takes at a time.
func (d *Device) BatchSize() int { return conn.IdealBatchSize }

// MTU reads the device's MTU from the kernel. Like every use of a device
// name, it must run in the device's network namespace.
func (d *Device) MTU() (int, error) { return netconf.LinkMTU(d.name) }

// Read reads one packet, or the segments of one super-packet, into
// bufs[i][offset:] and their lengths into sizes. The virtio header is read
// into the VirtioHdrLen bytes in front of offset, so an ordinary packet
// lands in place without a copy; a super-packet that overflows bufs[0]
// continues into a spare buffer and is split from there.
//
// After an ordinary packet it goes on reading, without waiting, the
// packets already queued on the device, up to len(bufs): small packets
// come one per read, and a caller that gets them in batches sends them in
// batches, instead of paying a wake-up per packet. A super-packet met that
// way is kept, and split by the next call.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < VirtioHdrLen || len(bufs) == 0 || len(bufs[0]) <= offset {
		return 0, fmt.Errorf("tundev: read at offset %d: want at least %d and a buffer beyond it", offset, VirtioHdrLen)
	}
	if d.spare == nil {
		d.spare = spares.Get().(*[maxRead]byte)[:]
	}
	defer d.returnSpare()
	defer clear(d.iov[:]) // keep no pointer into the caller's buffers
	if d.pending == 0 {
		first := bufs[0][offset-VirtioHdrLen:]
		n, err := d.readv(d.iovs(first))
		if err != nil {
			return 0, err
		}
		ok, err := ordinary(first, n, sizes)
		if ok {
			return d.drain(bufs, sizes, offset)
		}
		if err != nil {
			return 0, err
		}
		d.keep(first, n)
	}
	in := d.spare[:d.pending]
	d.pending = 0
	if d.tap {
		return splitFrame(in, bufs, sizes, offset)
	}
	return split(in, bufs, sizes, offset)
}

// Buffered reports whether the next Read has a packet without reading the
// file: a super-packet met while draining, kept in the spare buffer. A
// poll of the file does not show it.
func (d *Device) Buffered() bool { return d.pending > 0 }

// returnSpare gives the spare buffer back unless it holds a super-packet
// for the next Read.
func (d *Device) returnSpare() {
	if d.pending == 0 {
		spares.Put((*[maxRead]byte)(d.spare))
		d.spare = nil
	}
}

// keep makes the super-packet of n bytes read into first (and on into the
// spare buffer) whole in the spare buffer, for split.
func (d *Device) keep(first []byte, n int) {
	copy(d.spare[:n], first[:min(n, len(first))])
	d.pending = n
}

// drain reads the ordinary packets already queued on the device into
// bufs[1:], without waiting, and returns how many packets bufs holds. It
// stops at the first read that would wait or fails (a real error shows on
// the next Read), and at a super-packet, which it keeps for the next Read.
func (d *Device) drain(bufs [][]byte, sizes []int, offset int) (int, error) {
	rc, err := d.file.SyscallConn()
	if err != nil {
		return 1, nil
	}
	k := 1
	var bad error
	rc.Read(func(fd uintptr) bool {
		for k < min(len(bufs), len(sizes)) && len(bufs[k]) > offset {
			first := bufs[k][offset-VirtioHdrLen:]
			n, err := readvOnce(int(fd), d.iovs(first))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			ok, err := ordinary(first, n, sizes[k:])
			if err != nil {
				bad = err // this packet is dropped, those before it kept
				return true
			}
			if !ok {
				d.keep(first, n)
				return true
			}
			k++
		}
		return true
	})
	return k, bad
}

// iovs describes a read into first that overflows into the spare buffer.
func (d *Device) iovs(first []byte) []unix.Iovec {
	d.iov[0] = iovec(first)
	if len(first) < maxRead {
		d.iov[1] = iovec(d.spare[len(first):])
		return d.iov[:2]
	}
	return d.iov[:1]
}

// ordinary reports whether the n bytes read into first are one ordinary
// packet (no GSO, within first), and if so completes its checksum and puts
// its length in sizes[0]. It returns an error only for a malformed packet.
func ordinary(first []byte, n int, sizes []int) (bool, error) {
	if n > len(first) {
		return false, nil
	}
	if n <= VirtioHdrLen {
		return false, fmt.Errorf("%w: %d bytes", errMalformed, n)
	}
	h := header.VirtioNet(first)
	if h.GSOType() != header.VirtioNetGSONone {
		return false, nil
	}
	pkt := first[VirtioHdrLen:n]
	if h.Flags()&header.VirtioNetFlagNeedsCsum != 0 {
		if err := finishChecksum(pkt, int(h.CsumStart()), int(h.CsumOffset())); err != nil {
			return false, err
		}
	}
	sizes[0] = len(pkt)
	return true, nil
}

func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return v
}

// readv reads one packet into iovs, parking the goroutine (not the thread)
// while the device has nothing to read.
func (d *Device) readv(iovs []unix.Iovec) (int, error) {
	rc, err := d.file.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = readvOnce(int(fd), iovs)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if d.closed.Load() {
			return 0, os.ErrClosed
		}
		return 0, closedErr(os.NewSyscallError("readv", err))
	}
	return n, nil
}

func readvOnce(fd int, iovs []unix.Iovec) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iovs[0])), uintptr(len(iovs)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// closedErr maps what the kernel says of a device that is going away to
// os.ErrClosed, which ends the engine's loops.
func closedErr(err error) error {
	if errors.Is(err, syscall.EBADFD) || errors.Is(err, os.ErrClosed) {
		return os.ErrClosed
	}
	return err
}

// Write writes bufs[i][offset:] to the device; each buffer has
// VirtioHdrLen bytes of room in front of offset for the virtio header. A
// batch of more than one packet goes through wireguard's coalescing
// writer, made on the first such batch. It returns the bytes written and
// the errors joined, as wireguard's Write does.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioHdrLen {
		return 0, fmt.Errorf("tundev: write at offset %d: want at least %d", offset, VirtioHdrLen)
	}
	if len(bufs) > 1 && !d.tap {
		if gro := d.coalescer(); gro != nil {
			n, err := gro.Write(bufs, offset)
			return n, closedErr(err)
		}
	}
	for _, b := range bufs {
		clear(b[offset-VirtioHdrLen : offset]) // no GSO, checksums complete
	}
	return d.writeEach(bufs, offset)
}

// writeEach writes each bufs[i][offset-VirtioHdrLen:], its virtio header
// written, on its own.
func (d *Device) writeEach(bufs [][]byte, offset int) (int, error) {
	var errs error
	total := 0
	for _, b := range bufs {
		n, err := d.file.Write(b[offset-VirtioHdrLen:])
		if err != nil {
			if err = closedErr(err); err == os.ErrClosed {
				return total, err
			}
			errs = errors.Join(errs, err)
			continue
		}
		total += n - VirtioHdrLen
	}
	return total, errs
}

// WriteGSO writes each bufs[i][offset-VirtioHdrLen:] as it stands: the
// caller has written the virtio header in front of each packet (a TCP
// super-packet for the kernel to take as one, as the coalescing writer
// would have built it). Nothing is coalesced. It returns the bytes written
// after the virtio headers and the errors joined, as Write does; a device
// that does not take super-packets (CanWriteGSO false) refuses every one.
func (d *Device) WriteGSO(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioHdrLen {
		return 0, fmt.Errorf("tundev: write at offset %d: want at least %d", offset, VirtioHdrLen)
	}
	if !d.CanWriteGSO() {
		return 0, errors.New("tundev: the device takes no super-packets")
	}
	return d.writeEach(bufs, offset)
}

// CanWriteGSO reports whether WriteGSO takes TCP super-packets: a TUN
// device with its offloads on and batches coalesced (not turned off by
// Steps, nor closed).
func (d *Device) CanWriteGSO() bool { return !d.tap && !d.noGRO.Load() }

// coalescer returns wireguard's writer for this device, making it on the
// first call, or nil if it cannot be made. It writes through a duplicate of
// the device's descriptor: both name the same queue of the same device.
func (d *Device) coalescer() tun.Device {
	if p := d.gro.Load(); p != nil {
		return *p
	}
	if d.noGRO.Load() {
		return nil
	}
	d.groMu.Lock()
	defer d.groMu.Unlock()
	if p := d.gro.Load(); p != nil {
		return *p
	}
	dev, err := d.newCoalescer()
	if err != nil {
		d.noGRO.Store(true)
		return nil
	}
	d.gro.Store(&dev)
	return dev
}

func (d *Device) newCoalescer() (tun.Device, error) {
	rc, err := d.file.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if cerr := rc.Control(func(f uintptr) { fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return dev, nil
}

// Close closes the device (and wireguard's writer, if made); the kernel
// removes a TUN device when its last descriptor closes.
func (d *Device) Close() error {
	d.closed.Store(true)
	d.groMu.Lock()
	defer d.groMu.Unlock()
	var err error
	if p := d.gro.Load(); p != nil {
		err = (*p).Close()
	}
	d.noGRO.Store(true)
	return errors.Join(d.file.Close(), err)
}
