package privs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kept are the capabilities gretun keeps.
var Kept = []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW}

// Drop drops every capability but Kept from all threads of the process:
// from the bounding set (when it holds CAP_SETPCAP, as root does; a
// process without it cannot widen its capabilities again anyway), the
// ambient and inheritable sets, then the permitted and effective ones. A
// capability of Kept that the process does not hold stays absent.
func Drop() error {
	var keep uint64
	for _, c := range Kept {
		keep |= 1 << c
	}
	cur, err := get()
	if err != nil {
		return err
	}
	if cur.effective&(1<<unix.CAP_SETPCAP) != 0 {
		last, err := lastCap()
		if err != nil {
			return err
		}
		for c := 0; c <= last; c++ {
			if keep&(1<<c) != 0 {
				continue
			}
			if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
			}
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	want := cur.permitted & keep
	capsetHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	capsetData = [2]unix.CapUserData{
		{Effective: uint32(want), Permitted: uint32(want)},
		{Effective: uint32(want >> 32), Permitted: uint32(want >> 32)},
	}
	err = allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&capsetHdr)), uintptr(unsafe.Pointer(&capsetData[0])), 0)
	if err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// capset's arguments live in package variables, which never move, as the
// kernel reads them on every thread through addresses passed as uintptr.
var (
	capsetHdr  unix.CapUserHeader
	capsetData [2]unix.CapUserData
)

func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	switch {
	case e == syscall.ENOTSUP:
		return ErrCgo
	case e != 0:
		return e
	}
	return nil
}

type caps struct{ effective, permitted uint64 }

func get() (caps, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return caps{}, fmt.Errorf("reading capabilities: %v", err)
	}
	return caps{
		effective: uint64(data[0].Effective) | uint64(data[1].Effective)<<32,
		permitted: uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32,
	}, nil
}

// lastCap is the highest capability this kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("reading the number of capabilities: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, errors.New("reading the number of capabilities: /proc/sys/kernel/cap_last_cap is not a capability number")
	}
	return n, nil
}
