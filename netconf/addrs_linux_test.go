package netconf

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// TestWatchAddrs: fn runs once the watch is set up and again when an
// address is added or deleted; Addrs6 then shows the device's addresses.
func TestWatchAddrs(t *testing.T) {
	n, a, _ := veth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 100)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- testnet.InNS(a, func() error {
			return WatchAddrs(ctx, func() { changed <- struct{}{} })
		})
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case err := <-watchErr:
			t.Fatalf("WatchAddrs returned early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("fn not called: %s", what)
		}
	}
	wait("watch set up")
	global := netip.MustParseAddr("2001:db8:5::1")
	exec(t, n, a, "ip", "-6", "addr", "add", global.String()+"/64", "dev", "ua", "nodad")
	wait("address added")
	all, err := Addrs6()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all["ua"], global) {
		t.Errorf("Addrs6 shows ua with %v, want %s among them", all["ua"], global)
	}
	exec(t, n, a, "ip", "-6", "addr", "del", global.String()+"/64", "dev", "ua")
	wait("address deleted")
	if all, err = Addrs6(); err != nil || slices.Contains(all["ua"], global) {
		t.Errorf("after deleting it Addrs6 shows ua with %v (%v)", all["ua"], err)
	}
	cancel()
	if err := <-watchErr; err != nil {
		t.Errorf("WatchAddrs after cancel: %v", err)
	}
}
