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
// watcher of its own (see watchLinks); Device.Up sets the MTU.
func createTUN(name string, mtu int) (*tundev.Device, error) {
	return tundev.Open(name)
}

// readiness waits, holding no buffer, until a device has a packet to read,
// and bounds how long a read may wait with one. Made once per reading
// goroutine, it allocates nothing per call. Devices without a file (fakes)
// are taken as always readable, and their reads have no deadline.
type readiness struct {
	file     *os.File
	rc       syscall.RawConn
	buffered buffered // nil if the device keeps no packets of its own
	fds      [1]unix.PollFd
	poll     func(fd uintptr) bool // for rc.Read
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
		return n > 0 || err != nil && err != unix.EINTR
	}
	return r
}

// wait blocks, without a deadline, until the device has a packet to read,
// and reports false once the device is closed.
func (r *readiness) wait() bool {
	if r.rc == nil || r.buffered != nil && r.buffered.Buffered() {
		return true
	}
	r.file.SetReadDeadline(time.Time{})
	return r.rc.Read(r.poll) == nil
}

// expireAfter makes a read that waits longer than d for a packet fail
// with os.ErrDeadlineExceeded.
func (r *readiness) expireAfter(d time.Duration) {
	if r.file != nil {
		r.file.SetReadDeadline(time.Now().Add(d))
	}
}
