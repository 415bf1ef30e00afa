//go:build !linux

package netconf

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
)

// ErrNotImplemented is returned on platforms other than Linux.
var ErrNotImplemented = fmt.Errorf("netconf: not implemented on %s", runtime.GOOS)

func SetUp(name string) error            { return ErrNotImplemented }
func SetDown(name string) error          { return ErrNotImplemented }
func SetMTU(name string, mtu int) error  { return ErrNotImplemented }
func LinkMTU(name string) (int, error)   { return 0, ErrNotImplemented }
func LinkIndex(name string) (int, error) { return 0, ErrNotImplemented }
func Carrier(name string) (bool, error)  { return false, ErrNotImplemented }
func RouteMTU(dst netip.Addr, via string, mark uint32) (int, string, error) {
	return 0, "", ErrNotImplemented
}
func CanMark() error                                           { return ErrNotImplemented }
func HasLocalAddr(a netip.Addr) (bool, error)                  { return false, ErrNotImplemented }
func IgnoreRoutesWithLinkdown(name string) error               { return ErrNotImplemented }
func SetCarrier(tunFile *os.File, up bool) error               { return ErrNotImplemented }
func WatchLinks(ctx context.Context, fn func(LinkEvent)) error { return ErrNotImplemented }

func Addrs6() (map[string][]netip.Addr, error)              { return nil, ErrNotImplemented }
func WatchAddrs(ctx context.Context, fn func()) error       { return ErrNotImplemented }
func AddPeerAddr(name string, local, peer netip.Addr) error { return ErrNotImplemented }
