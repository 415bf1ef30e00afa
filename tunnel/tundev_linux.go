package tunnel

import (
	"os"
	"syscall"
	"time"

	"github.com/gretun/gretun/tundev"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// createTUN opens the tunnel's TUN device through tundev: with offloads,
// small while idle, and unmonitored. (wireguard's CreateTUN gives every
// device a netlink socket hearing every link event of the namespace, O(N²)
// for N tunnels: 98 s for 1000.) The engine follows link changes with one
// watcher of its own (see watchLinks); Host.PrepareDevice sets the MTU.
func createTUN(name string, mtu int) (tun.Device, error) {
	return tundev.Open(name)
}

// readiness tells whether a device has a packet to read, or waits until it
// has, without holding any buffer. Made once per reading goroutine, it
// allocates nothing per call. Devices without a file (fakes) are taken as
// always readable.
type readiness struct {
	file     *os.File
	rc       syscall.RawConn
	buffered buffered // nil if the device keeps no packets of its own
	fds      [1]unix.PollFd
	ready    bool
	poll     func(fd uintptr) bool // for rc.Read
	check    func(fd uintptr)      // for rc.Control
}

// buffered is a device that may hold a packet for its next Read that its
// file does not show (tundev.Device).
type buffered interface{ Buffered() bool }

func newReadiness(dev tun.Device) *readiness {
	r := &readiness{}
	if f := dev.File(); f != nil {
		r.file = f
		r.rc, _ = f.SyscallConn()
	}
	r.buffered, _ = dev.(buffered)
	r.poll = func(fd uintptr) bool {
		r.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		n, err := unix.Poll(r.fds[:], 0)
		r.ready = n > 0 || err != nil && err != unix.EINTR
		return r.ready
	}
	r.check = func(fd uintptr) { r.poll(fd) }
	return r
}

// wait blocks until the device has a packet to read, and reports false
// once the device is closed.
func (r *readiness) wait() bool {
	return r.rc == nil || r.isBuffered() || r.rc.Read(r.poll) == nil
}

// waitFor is wait for at most d; it reports false when d passed first (or
// the device is closed: the read that follows says so).
func (r *readiness) waitFor(d time.Duration) bool {
	if r.rc == nil || r.isBuffered() || r.file.SetReadDeadline(time.Now().Add(d)) != nil {
		return true
	}
	err := r.rc.Read(r.poll)
	r.file.SetReadDeadline(time.Time{})
	return err == nil
}

// now reports whether the device has a packet to read, without waiting; a
// closed device counts as readable (the read says it is closed).
func (r *readiness) now() bool {
	return r.rc == nil || r.isBuffered() || r.rc.Control(r.check) != nil || r.ready
}

func (r *readiness) isBuffered() bool { return r.buffered != nil && r.buffered.Buffered() }
