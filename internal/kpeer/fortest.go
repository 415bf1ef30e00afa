package kpeer

import (
	"context"
	"testing"

	"github.com/gretun/gretun/internal/testnet"
)

// ForTest boots a guest for t in a fresh namespace "u" that holds the tap
// with 192.0.2.1/24, the guest on 192.0.2.2/24, and stops it when t ends
// (before the namespace goes). It skips t in -short mode or when qemu,
// busybox or cpio are missing, naming what to install.
func ForTest(t testing.TB) (*testnet.Net, string, *Guest) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a qemu guest; skipped in -short mode")
	}
	if err := Available(); err != nil {
		t.Skip(err.Error())
	}
	n := testnet.ForTest(t)
	ns, err := n.NS("u")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Start(context.Background(), Options{
		Namespace: ns,
		TapName:   "kp0",
		HostAddr:  "192.0.2.1/24",
		GuestAddr: "192.0.2.2/24",
	})
	if err != nil {
		t.Fatalf("booting the kernel peer: %v", err)
	}
	t.Cleanup(g.Close)
	t.Logf("guest kernel %s (%s) booted in %v", g.KernelRelease, g.KernelPackage, g.BootTime.Round(1e6))
	return n, ns, g
}
