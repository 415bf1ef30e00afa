package tunnel

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// createTUN opens a TUN device with offloads (IFF_VNET_HDR: TSO/GRO
// super-packets) through wireguard's tun package, but unmonitored: its
// CreateTUN starts, per device, a netlink socket that hears every link
// event of the namespace and a goroutine polling the device each second,
// which makes creating N tunnels cost O(N²) netlink messages (98 s for
// 1000 tunnels, against 5 s wanted). The engine follows link changes with
// one watcher of its own instead (see watchLinks). The device's MTU is set
// by Host.PrepareDevice.
func createTUN(name string, mtu int) (tun.Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("/dev/net/tun does not exist")
		}
		return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("TUNSETIFF", err)
	}
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return dev, nil
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
