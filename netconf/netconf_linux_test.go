package netconf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// enterNS switches the test goroutine's thread into namespace ns until
// the test ends; netconf acts in the calling thread's namespace.
func enterNS(t *testing.T, ns string) {
	t.Helper()
	leave, err := testnet.Enter(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := leave(); err != nil {
			t.Error(err)
		}
	})
}

// veth makes namespaces a and b joined by veth ua—ub with 192.0.2.1/24 and
// 192.0.2.2/24, and enters a.
func veth(t *testing.T) (n *testnet.Net, a, b string) {
	t.Helper()
	skipShort(t)
	n = testnet.ForTest(t)
	var err error
	if a, err = n.NS("a"); err != nil {
		t.Fatal(err)
	}
	if b, err = n.NS("b"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		n.Veth(a, "ua", b, "ub"),
		n.Addr(a, "ua", "192.0.2.1/24"),
		n.Addr(b, "ub", "192.0.2.2/24"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	enterNS(t, a)
	return n, a, b
}

func exec(t *testing.T, n *testnet.Net, ns string, args ...string) string {
	t.Helper()
	out, err := n.Exec(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLinkBasics(t *testing.T) {
	n, a, _ := veth(t)

	idx, err := LinkIndex("ua")
	if err != nil {
		t.Fatal(err)
	}
	if out := exec(t, n, a, "ip", "-o", "link", "show", "dev", "ua"); !strings.HasPrefix(out, strconv.Itoa(idx)+": ua") {
		t.Errorf("LinkIndex = %d, ip says %q", idx, out)
	}
	if err := SetMTU("ua", 1400); err != nil {
		t.Fatal(err)
	}
	if mtu, err := LinkMTU("ua"); mtu != 1400 || err != nil {
		t.Errorf("LinkMTU = %d, %v; want 1400", mtu, err)
	}
	if out := exec(t, n, a, "ip", "link", "show", "dev", "ua"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("ip link after SetMTU 1400: %q", out)
	}

	if err := SetDown("ua"); err != nil {
		t.Fatal(err)
	}
	if out := exec(t, n, a, "ip", "link", "show", "dev", "ua"); strings.Contains(out, ",UP") {
		t.Errorf("ip link after SetDown: %q", out)
	}
	if c, err := Carrier("ua"); c || err != nil {
		t.Errorf("Carrier of a down link = %v, %v; want false", c, err)
	}
	if err := SetUp("ua"); err != nil {
		t.Fatal(err)
	}
	if out := exec(t, n, a, "ip", "link", "show", "dev", "ua"); !strings.Contains(out, ",UP") {
		t.Errorf("ip link after SetUp: %q", out)
	}

	for _, name := range []string{"nosuchlink", "", "../x", "a/b", "0123456789abcdefg"} {
		if _, err := LinkMTU(name); err == nil {
			t.Errorf("LinkMTU(%q) succeeded", name)
		}
		if err := IgnoreRoutesWithLinkdown(name); err == nil {
			t.Errorf("IgnoreRoutesWithLinkdown(%q) succeeded", name)
		}
	}
}

func TestHasLocalAddr(t *testing.T) {
	n, a, _ := veth(t)
	if err := n.Addr(a, "ua", "2001:db8::1/64"); err != nil {
		t.Fatal(err)
	}
	// Local routes that are no configured address: the rest of 127/8, and
	// a prefix routed to this host as a whole.
	exec(t, n, a, "ip", "route", "add", "local", "198.51.100.0/24", "dev", "lo")
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.2", false}, // the peer's, in namespace b
		{"::ffff:192.0.2.1", true},
		{"2001:db8::1", true},
		{"2001:db8::2", false},
		{"127.0.0.1", true},
		{"127.0.0.5", false},
		{"198.51.100.7", false},
	} {
		dumps := fullAddrDumps.Load()
		got, err := HasLocalAddr(netip.MustParseAddr(tt.addr))
		if got != tt.want || err != nil {
			t.Errorf("HasLocalAddr(%s) = %v, %v; want %v", tt.addr, got, err, tt.want)
		}
		// A configured address is found on its own device, without
		// listing every device's addresses.
		if tt.want && fullAddrDumps.Load() != dumps {
			t.Errorf("HasLocalAddr(%s) listed the addresses of every device", tt.addr)
		}
	}
	if _, err := HasLocalAddr(netip.Addr{}); err == nil {
		t.Error("HasLocalAddr(zero Addr) succeeded")
	}
}

func TestRouteMTU(t *testing.T) {
	n, a, _ := veth(t)
	exec(t, n, a, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2", "mtu", "1400")
	exec(t, n, a, "ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "mtu", "9000")

	for _, tt := range []struct {
		dst  string
		want int
	}{
		{"192.0.2.2", 1500},    // the link's MTU
		{"198.51.100.7", 1400}, // the route's mtu metric
		{"203.0.113.7", 1500},  // a metric above the link's MTU is capped
	} {
		mtu, dev, err := RouteMTU(netip.MustParseAddr(tt.dst), "", 0)
		if mtu != tt.want || dev != "ua" || err != nil {
			t.Errorf("RouteMTU(%s) = %d, %q, %v; want %d, \"ua\"", tt.dst, mtu, dev, err, tt.want)
		}
	}
	if _, _, err := RouteMTU(netip.MustParseAddr("2001:db8:1::1"), "", 0); err == nil {
		t.Error("RouteMTU to an unrouted destination succeeded")
	}
}

// TestRouteMTUVia checks the route MTU of a tunnel bound to a device
// (`dev NAME`): the route as it leaves by that device, not the one the
// table prefers, as the kernel's ip_tunnel_bind_dev looks it up; and of a
// marked tunnel (`fwmark N`): the route policy routing gives that mark.
func TestRouteMTUVia(t *testing.T) {
	n, a, b := veth(t)
	for _, err := range []error{
		n.Veth(a, "wa", b, "wb"),
		n.Addr(a, "wa", "203.0.113.1/24"),
		n.Addr(b, "wb", "203.0.113.2/24"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	exec(t, n, a, "ip", "link", "set", "wa", "mtu", "1400")
	exec(t, n, a, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
	exec(t, n, a, "ip", "route", "add", "198.51.100.0/24", "via", "203.0.113.2", "metric", "100", "mtu", "1300")
	// Packets marked 42 are routed by table 100, out of wa.
	exec(t, n, a, "ip", "rule", "add", "fwmark", "42", "table", "100")
	exec(t, n, a, "ip", "route", "add", "198.51.100.0/24", "via", "203.0.113.2", "table", "100")
	for _, tt := range []struct {
		dst, via string
		mark     uint32
		want     int
		dev      string
	}{
		{"198.51.100.7", "", 0, 1500, "ua"},   // the preferred route
		{"198.51.100.7", "wa", 0, 1300, "wa"}, // the route out of wa, and its metric
		{"192.0.2.2", "wa", 0, 1400, "wa"},    // no route out of wa: on its link, as the kernel assumes
		{"198.51.100.7", "", 42, 1400, "wa"},  // marked: table 100's route
		{"198.51.100.7", "", 7, 1500, "ua"},   // another mark: the main table
	} {
		mtu, dev, err := RouteMTU(netip.MustParseAddr(tt.dst), tt.via, tt.mark)
		if mtu != tt.want || dev != tt.dev || err != nil {
			t.Errorf("RouteMTU(%s, %q, %d) = %d, %q, %v; want %d, %q", tt.dst, tt.via, tt.mark, mtu, dev, err, tt.want, tt.dev)
		}
	}
	if _, _, err := RouteMTU(netip.MustParseAddr("198.51.100.7"), "nosuch", 0); err == nil {
		t.Error("RouteMTU out of a missing device succeeded")
	}
}

// TestRouteMTUException checks that a path MTU the kernel learnt from an
// ICMP Fragmentation Needed (a route exception, "cache ... mtu N") is not
// reported: it is soft state anyone on the path can forge (issue 12 saw a
// forged one become a tunnel's device MTU for good), and a tunnel's MTU
// comes from the underlay device, as the kernel's ip_tunnel_bind_dev has
// it. a—r—b with MTU 1400 between r and b.
func TestRouteMTUException(t *testing.T) {
	skipShort(t)
	n := testnet.ForTest(t)
	var a, r, b string
	var err error
	for _, p := range []struct {
		s    *string
		name string
	}{{&a, "a"}, {&r, "r"}, {&b, "b"}} {
		if *p.s, err = n.NS(p.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range []error{
		n.Veth(a, "ua", r, "ra"), n.Veth(r, "rb", b, "ub"),
		n.Addr(a, "ua", "192.0.2.1/24"), n.Addr(r, "ra", "192.0.2.254/24"),
		n.Addr(r, "rb", "198.51.100.254/24"), n.Addr(b, "ub", "198.51.100.2/24"),
		n.Forward(r),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	exec(t, n, r, "ip", "link", "set", "dev", "rb", "mtu", "1400")
	exec(t, n, b, "ip", "link", "set", "dev", "ub", "mtu", "1400")
	exec(t, n, a, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.254")
	exec(t, n, b, "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.254")
	enterNS(t, a)

	dst := netip.MustParseAddr("198.51.100.2")
	if mtu, _, err := RouteMTU(dst, "", 0); mtu != 1500 || err != nil {
		t.Fatalf("RouteMTU before = %d, %v; want 1500", mtu, err)
	}
	// A DF ping too large for the r—b hop: r answers Fragmentation Needed
	// and a's kernel caches the path MTU. The ping itself fails.
	n.Exec(a, "ping", "-c1", "-W2", "-M", "do", "-s", "1450", dst.String())
	if out := exec(t, n, a, "ip", "route", "get", dst.String()); !strings.Contains(out, "mtu 1400") {
		t.Fatalf("no route exception after Fragmentation Needed: ip route get: %s", out)
	}
	mtu, dev, err := RouteMTU(dst, "", 0)
	if mtu != 1500 || dev != "ua" || err != nil {
		t.Errorf("RouteMTU with a route exception of 1400 = %d, %q, %v; want the device's 1500, \"ua\"", mtu, dev, err)
	}
	// A metric on the route itself still counts; the exception still not.
	exec(t, n, a, "ip", "route", "replace", "198.51.100.0/24", "via", "192.0.2.254", "mtu", "1450")
	n.Exec(a, "ping", "-c1", "-W2", "-M", "do", "-s", "1420", dst.String())
	if out := exec(t, n, a, "ip", "route", "get", dst.String()); !strings.Contains(out, "mtu 1400") {
		t.Fatalf("no route exception under the 1450 metric: ip route get: %s", out)
	}
	if mtu, _, err := RouteMTU(dst, "", 0); mtu != 1450 || err != nil {
		t.Errorf("RouteMTU with route metric 1450 = %d, %v; want 1450 (ip route get: %s)",
			mtu, err, exec(t, n, a, "ip", "route", "get", dst.String()))
	}
}

func TestCarrierSelectsRoute(t *testing.T) {
	n, a, _ := veth(t)
	dev, err := tun.CreateTUN("gtun0", 1400)
	if err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	defer dev.Close()
	f := dev.(interface{ File() *os.File }).File()

	if err := SetUp("gtun0"); err != nil {
		t.Fatal(err)
	}
	if err := IgnoreRoutesWithLinkdown("gtun0"); err != nil {
		t.Fatal(err)
	}
	if out := exec(t, n, a, "sysctl", "-n", "net.ipv4.conf.gtun0.ignore_routes_with_linkdown"); strings.TrimSpace(out) != "1" {
		t.Errorf("ignore_routes_with_linkdown = %q, want 1", out)
	}
	if out, err := n.Exec(a, "sysctl", "-n", "net.ipv6.conf.gtun0.ignore_routes_with_linkdown"); err == nil && strings.TrimSpace(out) != "1" {
		t.Errorf("IPv6 ignore_routes_with_linkdown = %q, want 1", out)
	}
	// The tunnel's route and the user's higher-metric backup via the veth.
	exec(t, n, a, "ip", "route", "add", "203.0.113.0/24", "dev", "gtun0", "metric", "10")
	exec(t, n, a, "ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "metric", "100")

	routeDev := func() string {
		t.Helper()
		out := exec(t, n, a, "ip", "route", "get", "203.0.113.7")
		f := strings.Fields(out)
		for i := range f[:len(f)-1] {
			if f[i] == "dev" {
				return f[i+1]
			}
		}
		t.Fatalf("no dev in %q", out)
		return ""
	}
	for _, step := range []struct {
		carrier bool
		wantDev string
	}{{true, "gtun0"}, {false, "ua"}, {true, "gtun0"}, {false, "ua"}} {
		if err := SetCarrier(f, step.carrier); err != nil {
			t.Fatal(err)
		}
		if c, err := Carrier("gtun0"); c != step.carrier || err != nil {
			t.Errorf("Carrier after SetCarrier(%v) = %v, %v", step.carrier, c, err)
		}
		if got := routeDev(); got != step.wantDev {
			t.Errorf("carrier %v: route via %s, want %s", step.carrier, got, step.wantDev)
		}
	}
	if err := SetCarrier(nil, true); err == nil {
		t.Error("SetCarrier(nil) succeeded")
	}
	// The route set by the user is untouched.
	if out := exec(t, n, a, "ip", "route", "show", "dev", "gtun0"); !strings.Contains(out, "203.0.113.0/24") {
		t.Errorf("tunnel route gone: %q", out)
	}
}

func TestWatchLinks(t *testing.T) {
	t.Run("root", func(t *testing.T) { testWatchLinks(t, false) })
	// A netstack tunnel's process has no CAP_NET_ADMIN.
	t.Run("without CAP_NET_ADMIN", func(t *testing.T) { testWatchLinks(t, true) })
}

func testWatchLinks(t *testing.T, dropAdmin bool) {
	n, a, _ := veth(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan LinkEvent, 100)
	watchErr := make(chan error, 1)
	go func() {
		// WatchLinks subscribes in the calling thread's namespace, with
		// the thread's capabilities.
		watchErr <- testnet.InNS(a, func() error {
			if dropAdmin {
				restore, err := dropEffective(unix.CAP_NET_ADMIN)
				if err != nil {
					return err
				}
				defer restore()
			}
			return WatchLinks(ctx, func(e LinkEvent) { events <- e })
		})
	}()
	wait := func(what string, ok func(LinkEvent) bool) LinkEvent {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if ok(e) {
					return e
				}
			case err := <-watchErr:
				t.Fatalf("WatchLinks returned early: %v", err)
			case <-timeout:
				t.Fatalf("no event: %s", what)
			}
		}
	}
	idx, err := LinkIndex("ua")
	if err != nil {
		t.Fatal(err)
	}
	// Existing links come first; once ua is seen, changes cannot be missed.
	e := wait("existing link ua", func(e LinkEvent) bool { return e.Name == "ua" })
	if e.Index != idx || e.MTU != 1500 || !e.Up || e.Deleted {
		t.Errorf("existing ua: %+v", e)
	}
	exec(t, n, a, "ip", "link", "set", "dev", "ua", "mtu", "1380")
	e = wait("mtu 1380", func(e LinkEvent) bool { return e.Name == "ua" && e.MTU == 1380 })
	if e.Index != idx {
		t.Errorf("MTU event %+v, want index %d", e, idx)
	}
	exec(t, n, a, "ip", "link", "set", "dev", "ua", "down")
	wait("ua down", func(e LinkEvent) bool { return e.Name == "ua" && !e.Up && !e.Carrier })
	exec(t, n, a, "ip", "link", "del", "dev", "ua")
	wait("ua deleted", func(e LinkEvent) bool { return e.Index == idx && e.Deleted })

	cancel()
	select {
	case err := <-watchErr:
		if err != nil {
			t.Errorf("WatchLinks after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchLinks did not return after cancel")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal(ctx.Err())
	}
}

// skipShort skips namespace tests under -short (make unit: no privileges).
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root and network namespaces; skipped with -short")
	}
}

// dropEffective clears capability c from the calling thread's effective
// set (capabilities are per thread; the caller has it locked) and returns
// how to put it back.
func dropEffective(c uint) (restore func() error, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, err
	}
	saved := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return nil, err
	}
	return func() error { return unix.Capset(&hdr, &saved[0]) }, nil
}
