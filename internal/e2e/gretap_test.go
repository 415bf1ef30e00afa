package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
)

// gretapRouters runs gretap tunnels gtap between the classic scenario's
// routers, with the routers' LAN addresses gone (the LANs are bridged or
// addressed anew by the test).
func (tp *Topology) gretapRouters(words ...string) {
	tp.T.Helper()
	tp.tapRouters("gretap", UnderA, UnderB, words...)
}

// tapRouters is gretapRouters for mode (gretap, ip6gretap) between the
// underlay addresses a (router A) and b.
func (tp *Topology) tapRouters(mode, a, b string, words ...string) {
	tp.T.Helper()
	tp.Run(tp.A, "gtap", append([]string{"mode", mode, "remote", b, "local", a}, words...)...)
	tp.Run(tp.B, "gtap", append([]string{"mode", mode, "remote", a, "local", b}, words...)...)
	for _, ns := range []string{tp.A, tp.B} {
		tp.Sh(ns, "ip", "addr", "flush", "dev", "lan")
	}
}

// bridgeLAN puts the router's gretap device and its LAN port in bridge
// br0: the two hosts share one Ethernet segment across the underlay.
func (tp *Topology) bridgeLAN(ns string) {
	tp.T.Helper()
	tp.Sh(ns, "ip", "link", "add", "br0", "type", "bridge")
	tp.Sh(ns, "ip", "link", "set", "dev", "gtap", "master", "br0")
	tp.Sh(ns, "ip", "link", "set", "dev", "lan", "master", "br0")
	tp.Sh(ns, "ip", "link", "set", "dev", "br0", "up")
}

// bridgedHosts readies the hosts on either side of two bridged tap
// tunnels as one subnet: host B moves to 198.51.100.3/24, both get
// 2001:db8:1::2 and ::3, and the tunnel's mtu, since a bridge neither
// fragments nor sends ICMP (as with Linux's gretap).
func (tp *Topology) bridgedHosts(mtu int) {
	tp.T.Helper()
	tp.Sh(tp.HostB, "ip", "addr", "flush", "dev", "eth0")
	tp.Sh(tp.HostB, "ip", "addr", "add", "198.51.100.3/24", "dev", "eth0")
	for _, ns := range []string{tp.HostA, tp.HostB} {
		tp.Sh(ns, "ip", "link", "set", "dev", "eth0", "mtu", fmt.Sprint(mtu))
	}
	tp.Sh(tp.HostA, "ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
	tp.Sh(tp.HostB, "ip", "-6", "addr", "add", "2001:db8:1::3/64", "dev", "eth0", "nodad")
}

// linkInfo is what `ip -j link show` says of a device.
type linkInfo struct {
	MTU      int    `json:"mtu"`
	Address  string `json:"address"`
	LinkType string `json:"link_type"`
	Master   string `json:"master"`
}

func (tp *Topology) link(ns, dev string) linkInfo {
	tp.T.Helper()
	var l []linkInfo
	if err := json.Unmarshal([]byte(tp.Sh(ns, "ip", "-j", "link", "show", "dev", dev)), &l); err != nil || len(l) != 1 {
		tp.T.Fatalf("ip -j link show %s: %v", dev, err)
	}
	return l[0]
}

// TestGretapAddressed: two gretap devices addressed on one subnet, as two
// Ethernet ports of one link: ARP resolves the far device's MAC address,
// ping and TCP cross, over IPv6 too (neighbour discovery); the device is
// Ethernet with the kernel's default MTU (1462 on 1500).
func TestGretapAddressed(t *testing.T) {
	tp := Classic(t)
	tp.gretapRouters("key", "7", "csum", "seq")
	la := tp.link(tp.A, "gtap")
	lb := tp.link(tp.B, "gtap")
	if la.LinkType != "ether" || la.MTU != 1462-12 || la.Address == "" {
		t.Errorf("gretap device: %+v, want Ethernet with MTU 1450 (1462 less key, csum and seq)", la)
	}
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1/24", "dev", "gtap")
	tp.Sh(tp.B, "ip", "addr", "add", "198.51.100.3/24", "dev", "gtap")
	tp.Sh(tp.A, "ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "gtap", "nodad")
	tp.Sh(tp.B, "ip", "-6", "addr", "add", "2001:db8:1::3/64", "dev", "gtap", "nodad")
	tp.Ping(tp.A, "198.51.100.3")
	if neigh := tp.Sh(tp.A, "ip", "neigh", "show", "198.51.100.3", "dev", "gtap"); !strings.Contains(neigh, lb.Address) {
		t.Errorf("ARP on A: %q, want B's MAC address %s", neigh, lb.Address)
	}
	tp.Ping(tp.B, "2001:db8:1::1")
	if neigh := tp.Sh(tp.B, "ip", "-6", "neigh", "show", "2001:db8:1::1", "dev", "gtap"); !strings.Contains(neigh, la.Address) {
		t.Errorf("neighbour discovery on B: %q, want A's MAC address %s", neigh, la.Address)
	}
	tp.Transfer(tp.A, tp.B, "198.51.100.3", 4<<20)
	tp.Transfer(tp.B, tp.A, "2001:db8:1::1", 1<<20)
	sa, sb := tp.Stats(tp.A, "gtap"), tp.Stats(tp.B, "gtap")
	if sa.RxPackets < 1000 || sb.RxPackets < 1000 || sa.RxErrors != 0 || sb.RxErrors != 0 {
		t.Errorf("counters: A %+v B %+v", sa, sb)
	}
}

// TestGretapBridged: each router bridges its gretap device with its LAN
// port, and the two hosts, one subnet across the underlay, reach each
// other as on one switch: ARP (broadcast), ping, TCP, IPv6 neighbour
// discovery, and a VLAN-tagged frame arrives tagged.
func TestGretapBridged(t *testing.T) {
	tp := Classic(t)
	tp.gretapRouters()
	tp.bridgeLAN(tp.A)
	tp.bridgeLAN(tp.B)
	if m := tp.link(tp.A, "gtap").Master; m != "br0" {
		t.Fatalf("gtap's master is %q", m)
	}
	tp.bridgedHosts(1462)
	tp.Ping(tp.HostA, "198.51.100.3")
	macB := tp.link(tp.HostB, "eth0").Address
	if neigh := tp.Sh(tp.HostA, "ip", "neigh", "show", "198.51.100.3"); !strings.Contains(neigh, macB) {
		t.Errorf("ARP on host A: %q, want host B's MAC address %s", neigh, macB)
	}
	tp.Ping(tp.HostB, "2001:db8:1::2")
	tp.Transfer(tp.HostA, tp.HostB, "198.51.100.3", 4<<20)

	// A tagged frame, VLAN 42, from host A to host B's MAC address:
	// this kernel has no VLAN devices, so a packet socket sends it and
	// tcpdump on host B looks for it.
	out := &testnet.Buffer{}
	dump, err := tp.Net.Start(tp.HostB, out, out, "timeout", "20", "tcpdump", "-i", "eth0", "-nn", "-e", "-c", "1", "vlan 42")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && !strings.Contains(out.String(), "listening on"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	hw, _ := net.ParseMAC(macB)
	payload := []byte("a frame on VLAN 42")
	frame := make([]byte, header.EthernetHeaderLen, 64)
	header.Ethernet(frame).Encode(hw, []byte{2, 0, 0, 0, 0, 0x42}, 0x8100)
	frame = append(frame, 0x00, 42, 0x88, 0xb5) // VLAN 42, local experimental EtherType
	frame = append(frame, payload...)
	for i := 0; i < 5 && dump.ProcessState == nil; i++ {
		sendFrame(t, tp.HostA, "eth0", frame)
		time.Sleep(200 * time.Millisecond)
	}
	dump.Wait()
	if !strings.Contains(out.String(), "vlan 42") || !strings.Contains(out.String(), "02:00:00:00:00:42") {
		t.Errorf("no VLAN 42 frame from 02:00:00:00:00:42 reached host B:\n%s", out)
	}
	sa, sb := tp.Stats(tp.A, "gtap"), tp.Stats(tp.B, "gtap")
	if sb.RxErrors != 0 || sa.RxErrors != 0 || sa.TxPackets < 1000 {
		t.Errorf("counters: A %+v B %+v", sa, sb)
	}
}

// sendFrame writes one whole Ethernet frame on dev in ns.
func sendFrame(t *testing.T, ns, dev string, frame []byte) {
	t.Helper()
	err := testnet.InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], frame[:6])
		return unix.Sendto(fd, frame, 0, to)
	})
	if err != nil {
		t.Fatalf("sending a frame on %s: %v", dev, err)
	}
}

// TestGretapTooBig: a gretap device with `mtu 1500` on a 1500-byte
// underlay, bridged: a full-size frame does not fit the path once
// encapsulated. With the default pmtudisc it is dropped and counted, and
// nobody gets an ICMP error; with nopmtudisc its outer packet is
// fragmented and the far router reassembles it.
func TestGretapTooBig(t *testing.T) {
	for _, df := range []string{"pmtudisc", "nopmtudisc"} {
		t.Run(df, func(t *testing.T) {
			tp := Classic(t)
			tp.gretapRouters("mtu", "1500", df)
			tp.bridgeLAN(tp.A)
			tp.bridgeLAN(tp.B)
			tp.Sh(tp.HostB, "ip", "addr", "flush", "dev", "eth0")
			tp.Sh(tp.HostB, "ip", "addr", "add", "198.51.100.3/24", "dev", "eth0")
			tp.Ping(tp.HostA, "198.51.100.3")
			out, err := tp.Exec(tp.HostA, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1472", "198.51.100.3")
			sa := tp.Stats(tp.A, "gtap")
			switch df {
			case "pmtudisc":
				if err == nil || strings.Contains(out, "Frag needed") || strings.Contains(out, "too long") {
					t.Errorf("full-size pings crossed or were answered with ICMP:\n%s", out)
				}
				if sa.TxTooBig != 3 || sa.TxFragmented != 0 || sa.TxICMP != 0 {
					t.Errorf("router A: tx_too_big %d, tx_fragmented %d, tx_icmp %d; want 3, 0, 0", sa.TxTooBig, sa.TxFragmented, sa.TxICMP)
				}
			case "nopmtudisc":
				if err != nil || !strings.Contains(out, " 0% packet loss") {
					t.Errorf("full-size pings lost: %v\n%s", err, out)
				}
				if sa.TxFragmented < 6 || sa.TxTooBig != 0 {
					t.Errorf("router A: tx_fragmented %d, tx_too_big %d; want 2 fragments a ping", sa.TxFragmented, sa.TxTooBig)
				}
			}
		})
	}
}

// TestGretapKeepaliveKernelPeer: gretun's gretap keepalives are Cisco's,
// IPv4 in GRE 0x0800, which Linux hands only to a gre tunnel: beside a
// bare Linux gretap they are never returned and the line goes down; once
// the guest also has a gre tunnel with the same endpoints and key (and
// forwards, as a router returning keepalives must), they come back and
// the line comes up, while frames keep crossing the gretap.
func TestGretapKeepaliveKernelPeer(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)
	guest := func(cmd string) {
		t.Helper()
		if out, err := g.Run(cmd); err != nil {
			t.Fatalf("guest: %s: %v: %s", cmd, err, out)
		}
	}
	guest("ip link add gt1 type gretap remote " + UnderA + " local " + UnderB + " key 5 && ip addr add 198.51.100.2/24 dev gt1 && ip link set gt1 up")
	guest("for d in all default eth0; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done")
	guest("echo 1 > /proc/sys/net/ipv4/ip_forward")

	tp := &Topology{Net: n, T: t, A: ns}
	tp.Run(ns, "gt1", "mode", "gretap", "remote", UnderB, "local", UnderA, "key", "5", "keepalive", kaPeriod, "3")
	tp.Sh(ns, "ip", "addr", "add", "198.51.100.1/24", "dev", "gt1")
	tp.waitFor("8 keepalives sent and the line down beside a bare Linux gretap", func() bool {
		return tp.keepalive(ns, "gt1").Sent >= 8 && !tp.carrier(ns, "gt1")
	})
	if k := tp.keepalive(ns, "gt1"); k.Received != 0 || k.State != "down" {
		t.Errorf("keepalives returned by a bare gretap: %s", k.Summary)
	}

	guest("ip tunnel add gk mode gre remote " + UnderA + " local " + UnderB + " key 5 && ip link set gk up")
	guest("for d in gk gt1; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done")
	tp.waitFor("5 keepalives returned through the guest's gre tunnel", func() bool {
		k := tp.keepalive(ns, "gt1")
		return k.Received >= 5 && k.State == "up" && tp.carrier(ns, "gt1")
	})
	tp.Ping(ns, "198.51.100.2")
}
