package netconf

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

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

// netlinkNames is every link's name by index, as netlink.LinkList gives.
func netlinkNames(t *testing.T) map[int]string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names
}

// TestLinkNames: the names read from a dump that skips everything else
// are those netlink.LinkList decodes, for a fraction of the garbage (the
// address watcher lists every link of a namespace of 10,000 tunnels).
func TestLinkNames(t *testing.T) {
	n, a, _ := veth(t)
	for i := range 40 {
		exec(t, n, a, "ip", "link", "add", fmt.Sprintf("v%da", i), "type", "veth", "peer", "name", fmt.Sprintf("v%db", i))
	}
	want := netlinkNames(t)
	got, err := linkNames()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("link names (-LinkList +linkNames):\n%s", diff)
	}
	bytes := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	full := bytes(func() { netlink.LinkList() })
	names := bytes(func() { linkNames() })
	t.Logf("%d links: LinkList allocates %d bytes, linkNames %d", len(want), full, names)
	if names > full/4 {
		t.Errorf("linkNames allocates %d bytes for %d links, LinkList %d", names, len(want), full)
	}
}

// TestAddrs6MatchesAddrList: Addrs6, which decodes only what it needs,
// gives what netlink's LinkList and AddrList give.
func TestAddrs6MatchesAddrList(t *testing.T) {
	n, a, _ := veth(t)
	exec(t, n, a, "ip", "-6", "addr", "add", "2001:db8:6::1/64", "dev", "ua", "nodad")
	exec(t, n, a, "ip", "-6", "addr", "add", "2001:db8:7::1", "peer", "2001:db8:7::2", "dev", "ua", "nodad")
	names := netlinkNames(t)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]netip.Addr{}
	for _, x := range addrs {
		ip, _ := netip.AddrFromSlice(x.IP)
		want[names[x.LinkIndex]] = append(want[names[x.LinkIndex]], ip)
	}
	got, err := Addrs6()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Addrs6 (-netlink +Addrs6):\n%s", diff)
	}
	if !slices.Contains(got["ua"], netip.MustParseAddr("2001:db8:7::1")) {
		t.Errorf("ua's point-to-point address is missing: %v", got["ua"])
	}
}
