package interop

import (
	"fmt"
	"strings"
	"testing"
)

// TestInteropGretap runs gretun's gretap against Linux's (`ip link add …
// type gretap`) in the guest, with the guest NIC's default offloads:
// addressed (each device has the tunnel's inner address) and bridged (each
// device is a port of a bridge carrying the address), plain and with key,
// csum and seq, ping and TCP both ways.
func TestInteropGretap(t *testing.T) {
	key := plain()
	key.ikey, key.okey, key.icsum, key.ocsum, key.iseq, key.oseq = 7, 7, true, true, true, true
	addressed := func(t *testing.T, e *env, c tcase) { gretapTraffic(t, e, c, false) }
	bridged := func(t *testing.T, e *env, c tcase) { gretapTraffic(t, e, c, true) }
	runMatrix(t, false, []tcase{
		{name: "gretap/addressed", mode: "gretap", gretun: plain(), guest: plain(), run: addressed},
		{name: "gretap/addressed-key-csum-seq", mode: "gretap", gretun: key, guest: key, run: addressed},
		{name: "gretap/bridged", mode: "gretap", gretun: plain(), guest: plain(), run: bridged},
		{name: "gretap/bridged-key-csum-seq", mode: "gretap", gretun: key, guest: key, run: bridged},
	})
}

// gretapTraffic checks a gretap pair: the same MTU on both sides (the
// kernel's underlay − 38, less the options), ARP resolving the far end,
// ping and TCP both ways, 0x6558 and the options on the wire both ways, and
// no errors on either side. With bridged, each side's gretap device is put
// in a bridge br0 that takes over its address.
func gretapTraffic(t *testing.T, e *env, c tcase, bridged bool) {
	if mtu, kmtu := hostMTU(t, e), guestMTU(t, e); mtu != kmtu {
		t.Errorf("gretun's gretap MTU is %d, the kernel's %d", mtu, kmtu)
	}
	dev := tunName
	if bridged {
		dev = "br0"
		bridgeTunnel(t, e, false)
	}
	capt := startCapture(t, e)
	g0 := ifStats(t, e)
	r0, _ := gretunCounters(t, e, tunName)
	if s, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "5", guestIn4); s != 3 || r != 3 {
		t.Errorf("ping gretun → kernel: %d of %d answered:\n%s", r, s, out)
	}
	if s, r, out := guestPing(t, e, "-c 3 -i 0.2 -W 5 "+hostIn4); s != 3 || r != 3 {
		t.Errorf("ping kernel → gretun: %d of %d answered:\n%s", r, s, out)
	}
	guestMAC, err := e.g.Run("cat /sys/class/net/" + dev + "/address")
	if err != nil {
		t.Fatal(err)
	}
	if neigh, _ := e.n.Exec(e.ns, "ip", "neigh", "show", guestIn4); !strings.Contains(neigh, strings.TrimSpace(guestMAC)) {
		t.Errorf("ARP: %q, want the guest's %s address %s", neigh, dev, guestMAC)
	}
	pkts := capt.stop(t)
	checkDirection(t, pkts, c.mode, "gretun → kernel", hostUnder, c.gretun, 4)
	checkDirection(t, pkts, c.mode, "kernel → gretun", guestUnd, c.guest, 4)
	tcpToGuest(t, e, guestIn4)
	tcpFromGuest(t, e, hostIn4)
	g1 := ifStats(t, e)
	r1, _ := gretunCounters(t, e, tunName)
	noErrors(t, g1.Sub(g0), sub(r1, r0))
	if d := sub(r1, r0); d.RxPackets < xferSize/1500 || d.TxPackets < xferSize/1500 {
		t.Errorf("gretun counted %d frames in and %d out for a %d-byte transfer each way", d.RxPackets, d.TxPackets, xferSize)
	}
}

// bridgeTunnel makes each side's tunnel device (gretap or ip6gretap) a port
// of a bridge br0, removed at the end of the test, and moves the inner
// addresses from the device to br0: the IPv4 ones, and with v6 the IPv6
// ones too.
func bridgeTunnel(t *testing.T, e *env, v6 bool) {
	t.Helper()
	for _, cmd := range []string{
		"ip addr flush dev " + tunName,
		"ip link add br0 type bridge",
		"ip link set dev " + tunName + " master br0",
		"ip link set dev br0 up",
	} {
		if _, err := e.n.Exec(e.ns, strings.Fields(cmd)...); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if _, err := e.g.Run(cmd); err != nil {
			t.Fatalf("guest: %s: %v", cmd, err)
		}
	}
	t.Cleanup(func() {
		e.n.Exec(e.ns, "ip", "link", "del", "br0")
		e.g.Run("ip link del br0")
	})
	if _, err := e.n.Exec(e.ns, "ip", "addr", "add", hostIn4+"/30", "dev", "br0"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.Run(fmt.Sprintf("ip addr add %s/30 dev br0", guestIn4)); err != nil {
		t.Fatal(err)
	}
	if !v6 {
		return
	}
	if _, err := e.n.Exec(e.ns, "ip", "-6", "addr", "add", hostIn6+"/64", "dev", "br0", "nodad"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.Run(fmt.Sprintf("ip -6 addr add %s/64 dev br0 nodad", guestIn6)); err != nil {
		t.Fatal(err)
	}
}
