package tunnel

import (
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

// waitReadable blocks until dev has a packet to read, without holding any
// buffer, and reports false once the device is closed. Devices without a
// file (fakes) are taken as readable.
func waitReadable(dev tun.Device) bool {
	f := dev.File()
	if f == nil {
		return true
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || err != nil && err != unix.EINTR
	})
	return err == nil
}
