package tunnel

import (
	"github.com/gretun/gretun/tundev"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// createTUN opens a TUN device with offloads through tundev, which keeps
// an idle device small (wireguard's own device holds ~700 KB of coalescing
// tables per device, 1000 tunnels 205 MB) and is unmonitored: wireguard's
// CreateTUN starts, per device, a netlink socket that hears every link
// event of the namespace and a goroutine polling the device each second,
// which makes creating N tunnels cost O(N²) netlink messages (98 s for
// 1000 tunnels). The engine follows link changes with one watcher of its
// own instead (see watchLinks). The device's MTU is set by
// Host.PrepareDevice.
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
