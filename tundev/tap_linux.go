package tundev

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/gretun/gretun/netconf"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
)

// TAP is one TAP device: Ethernet frames (gretap), an ordinary Ethernet
// device with a MAC address the kernel picks, which can join a bridge.
// It is opened without offloads (no IFF_VNET_HDR): the kernel completes
// checksums and segments before a frame reaches it, so every frame read
// is whole and at most MTU plus its Ethernet and VLAN headers. Read is for
// one goroutine at a time; Write may be called from several.
type TAP struct {
	file   *os.File
	name   string
	closed atomic.Bool
}

var _ tun.Device = (*TAP)(nil)

// OpenTAP creates (or attaches to) the TAP device name.
func OpenTAP(name string) (*TAP, error) {
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
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("TUNSETIFF", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &TAP{file: os.NewFile(uintptr(fd), "/dev/net/tun"), name: ifr.Name()}, nil
}

// File is the device's file, for ioctls such as TUNSETCARRIER and polling.
func (d *TAP) File() *os.File { return d.file }

// Name is the interface name the kernel gave the device.
func (d *TAP) Name() (string, error) { return d.name, nil }

// Events never delivers: see the package comment.
func (d *TAP) Events() <-chan tun.Event { return nil }

// BatchSize is how many frames one Read may return.
func (d *TAP) BatchSize() int { return conn.IdealBatchSize }

// MTU reads the device's MTU from the kernel (in the device's namespace).
func (d *TAP) MTU() (int, error) { return netconf.LinkMTU(d.name) }

// Read reads one frame into bufs[0][offset:], waiting for it, then the
// frames already queued, without waiting, into the buffers after it: a
// caller that gets frames in batches sends them in batches. A frame that
// fills its buffer to the end may have been cut short by it: it is dropped
// and reported as an error after the frames before it.
func (d *TAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 || len(bufs[0]) <= offset {
		return 0, fmt.Errorf("tundev: TAP read at offset %d: want a buffer beyond it", offset)
	}
	rc, err := d.file.SyscallConn()
	if err != nil {
		return 0, err
	}
	k := 0
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for k < min(len(bufs), len(sizes)) && len(bufs[k]) > offset {
			n, err := unix.Read(int(fd), bufs[k][offset:])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return k > 0 // wait only for the first frame
			case err != nil:
				rerr = err
				return true
			case n >= len(bufs[k])-offset:
				rerr = fmt.Errorf("%w: a frame of at least %d bytes", errMalformed, n)
				return true
			}
			sizes[k] = n
			k++
		}
		return true
	})
	if k > 0 {
		return k, rerr
	}
	if err == nil {
		err = rerr
	}
	if d.closed.Load() {
		return 0, os.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	return 0, closedErr(os.NewSyscallError("read", err))
}

// Write writes each frame bufs[i][offset:] to the device. It returns the
// bytes written and the errors joined, as wireguard's Write does.
func (d *TAP) Write(bufs [][]byte, offset int) (int, error) {
	var errs error
	total := 0
	for _, b := range bufs {
		n, err := d.file.Write(b[offset:])
		if err != nil {
			if err = closedErr(err); err == os.ErrClosed {
				return total, err
			}
			errs = errors.Join(errs, err)
			continue
		}
		total += n
	}
	return total, errs
}

// Close closes the device; the kernel removes it with its last descriptor.
func (d *TAP) Close() error {
	d.closed.Store(true)
	return d.file.Close()
}
