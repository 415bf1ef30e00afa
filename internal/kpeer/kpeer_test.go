package kpeer_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/kpeer"
)

func TestGuest(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)

	t.Run("run", func(t *testing.T) {
		out, err := g.Run("echo hello; echo world")
		if err != nil || out != "hello\nworld\n" {
			t.Fatalf("Run = %q, %v; want \"hello\\nworld\\n\"", out, err)
		}
		out, err = g.Run("printf 'no newline'")
		if err != nil || out != "no newline" {
			t.Fatalf("Run = %q, %v; want \"no newline\"", out, err)
		}
		out, err = g.Run("echo oops >&2; exit 3")
		if err == nil || !strings.Contains(err.Error(), "exited 3") || out != "oops\n" {
			t.Fatalf("Run of failing command = %q, %v; want output \"oops\\n\" and an error with exit 3", out, err)
		}
		// Shell syntax and quoting survive the trip intact.
		out, err = g.Run(`for i in 1 2; do printf '%s|' "a'b $i"; done`)
		if err != nil || out != "a'b 1|a'b 2|" {
			t.Fatalf("Run = %q, %v", out, err)
		}
		// Background jobs outlive their command; their exit must not
		// disturb the reading of the next command line.
		for i := 0; i < 5; i++ {
			if _, err := g.Run("(sleep 0.2; true) >/dev/null 2>&1 &"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, err := g.RunContext(ctx, "echo next")
			cancel()
			if err != nil || out != "next\n" {
				t.Fatalf("command after a background job = %q, %v", out, err)
			}
		}
		rel, err := g.Run("uname -r")
		if err != nil || strings.TrimSpace(rel) != g.KernelRelease {
			t.Fatalf("uname -r = %q, %v; want %q", rel, err, g.KernelRelease)
		}
	})

	t.Run("modules", func(t *testing.T) {
		out, err := g.Run("cat /proc/modules")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range kpeer.DefaultModules {
			if !regexp.MustCompile(`(?m)^` + m + ` `).MatchString(out) {
				t.Errorf("module %s not loaded; /proc/modules:\n%s", m, out)
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		out, err := n.Exec(ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", "192.0.2.2")
		if err != nil {
			t.Fatalf("namespace → guest: %v", err)
		}
		if !strings.Contains(out, "2 received") {
			t.Fatalf("namespace → guest lost packets:\n%s", out)
		}
		if out, err := g.Run("ping -c 2 -W 5 192.0.2.1"); err != nil || !strings.Contains(out, "2 packets received") {
			t.Fatalf("guest → namespace: %v\n%s", err, out)
		}
	})

	t.Run("tunnels", func(t *testing.T) {
		// ip prints the sequence and checksum flags as sentences.
		const (
			iseq  = "Drop packets out of sequence."
			icsum = "Checksum in received packet is required."
			oseq  = "Sequence packets on output."
			ocsum = "Checksum output packets."
		)
		cases := []struct {
			add  string
			want []string // fragments of `ip tunnel show NAME`
			mtu  string   // the kernel's choice: 1500 minus the headers
		}{
			{"ip tunnel add tg1 mode gre remote 192.0.2.1 local 192.0.2.2 ikey 5 okey 6 icsum ocsum iseq oseq ttl 255",
				[]string{"gre/ip", "remote 192.0.2.1", "local 192.0.2.2", "ttl 255", "ikey 5", "okey 6", iseq, oseq, icsum, ocsum}, "1464"},
			{"ip tunnel add tg2 mode gre remote 192.0.2.1 local 192.0.2.2 key 7 seq",
				[]string{"gre/ip", "key 7", iseq, oseq}, "1468"},
			{"ip tunnel add tg3 mode gre remote 192.0.2.1 local 192.0.2.2 ttl inherit nopmtudisc",
				[]string{"gre/ip", "ttl inherit", "nopmtudisc"}, "1476"},
			{"ip tunnel add ti1 mode ipip remote 192.0.2.1 local 192.0.2.2 ttl 64",
				[]string{"ip/ip", "remote 192.0.2.1", "ttl 64"}, "1480"},
		}
		for _, c := range cases {
			name := strings.Fields(c.add)[3]
			if _, err := g.Run(c.add + " && ip link set " + name + " up"); err != nil {
				t.Fatal(err)
			}
			out, err := g.Run("ip tunnel show " + name)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: `ip tunnel show` lacks %q:\n%s", name, w, out)
				}
			}
			if mtu, err := g.Run("cat /sys/class/net/" + name + "/mtu"); err != nil || strings.TrimSpace(mtu) != c.mtu {
				t.Errorf("%s: mtu %q, %v; want %s", name, mtu, err, c.mtu)
			}
			if strings.Contains(c.add, " seq") && !strings.Contains(out, iseq) {
				t.Errorf("%s: seq did not set iseq:\n%s", name, out)
			}
			if !strings.Contains(c.add, "csum") && strings.Contains(out, icsum) {
				t.Errorf("%s: checksums required without csum:\n%s", name, out)
			}
			if _, err := g.IfStats(name); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		for _, c := range cases {
			if _, err := g.Run("ip tunnel del " + strings.Fields(c.add)[3]); err != nil {
				t.Error(err)
			}
		}
	})

	// The guest's ip is the full iproute2: the wave-2 tunnels (FOU, the
	// IPv6 tunnels, gretap and bridges) come up with their modules.
	t.Run("iproute2", func(t *testing.T) {
		run := func(cmd string, want ...string) {
			t.Helper()
			out, err := g.Run(cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("`%s` lacks %q:\n%s", cmd, w, out)
				}
			}
		}
		run("ip -V", "iproute2")
		run("ip fou add port 4754 ipproto 47 && ip fou show", "port 4754", "ipproto 47")
		run("ip link add fg1 type gre remote 192.0.2.1 local 192.0.2.2 encap fou encap-sport auto encap-dport 4754 && ip link set dev fg1 up && ip -d link show fg1",
			"gre remote 192.0.2.1 local 192.0.2.2", "encap fou", "encap-dport 4754", "encap-sport auto")
		run("ip -6 addr add 2001:db8::2/64 dev eth0 nodad && ip -6 addr show dev eth0", "2001:db8::2/64")
		run("ip link add g6 type ip6gre local 2001:db8::2 remote 2001:db8::1 && ip link set dev g6 up && ip -d link show g6",
			"ip6gre remote 2001:db8::1 local 2001:db8::2")
		// One ip6tnl per (local, remote) pair, whatever the mode.
		run("ip link add t66 type ip6tnl mode ip6ip6 local 2001:db8::2 remote 2001:db8::1 && ip link set dev t66 up && ip -d link show t66",
			"ip6tnl ip6ip6 remote 2001:db8::1 local 2001:db8::2")
		run("ip link add t46 type ip6tnl mode ipip6 local 2001:db8::2 remote 2001:db8::3 && ip -d link show t46",
			"ip6tnl ipip6 remote 2001:db8::3")
		run("ip link add gt1 type gretap local 192.0.2.2 remote 192.0.2.1 key 9 && ip link add br0 type bridge && ip link set dev gt1 master br0 && ip link set dev gt1 up && ip link set dev br0 up && ip -d link show gt1",
			"gretap remote 192.0.2.1 local 192.0.2.2", "master br0", "bridge_slave")
		run("ip neigh show dev eth0")
		run("ip -s -d link show eth0", "RX:", "TX:")
		run("ip link del gt1 && ip link del br0 && ip link del t46 && ip link del t66 && ip link del g6 && ip link del fg1 && ip fou del port 4754 && ip -6 addr del 2001:db8::2/64 dev eth0")
	})

	t.Run("stats", func(t *testing.T) {
		before, err := g.IfStats("eth0")
		if err != nil {
			t.Fatal(err)
		}
		snmp0, err := g.SNMP()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Exec(ns, "ping", "-c", "3", "-i", "0.2", "-W", "5", "192.0.2.2"); err != nil {
			t.Fatal(err)
		}
		after, err := g.IfStats("eth0")
		if err != nil {
			t.Fatal(err)
		}
		snmp1, err := g.SNMP()
		if err != nil {
			t.Fatal(err)
		}
		d := after.Sub(before)
		// Three echo requests in and three replies out, plus the
		// commands' own nothing: eth0 carries only test traffic.
		if d.RxPackets < 3 || d.TxPackets < 3 || d.RxBytes < 3*98 {
			t.Errorf("eth0 counters moved by %v; want at least 3 packets each way", d.Map())
		}
		if got := snmp1["Icmp.InEchos"] - snmp0["Icmp.InEchos"]; got != 3 {
			t.Errorf("Icmp.InEchos moved by %d; want 3", got)
		}
		if _, err := g.IfStats("nosuch0"); err == nil {
			t.Error("IfStats of a missing interface succeeded")
		}
		if _, err := g.IfStats("../../etc"); err == nil {
			t.Error("IfStats accepted a path as interface name")
		}
	})
}

func TestParse(t *testing.T) {
	s, err := kpeer.ParseStats("rx_packets:10\ntx_packets:4\nrx_crc_errors:2\nrx_fifo_errors:1\nrx_errors:3\n")
	if err != nil {
		t.Fatal(err)
	}
	want := kpeer.Stats{RxPackets: 10, TxPackets: 4, RxCRCErrors: 2, RxFIFOErrors: 1, RxErrors: 3}
	if s != want {
		t.Fatalf("ParseStats = %+v, want %+v", s, want)
	}
	if d := s.Sub(kpeer.Stats{RxPackets: 4}); d.RxPackets != 6 || d.RxCRCErrors != 2 {
		t.Fatalf("Sub = %+v", d)
	}
	for _, bad := range []string{"", "rx_packets", "rx_packets:x", "weird:1"} {
		if _, err := kpeer.ParseStats(bad); err == nil {
			t.Errorf("ParseStats(%q) succeeded", bad)
		}
	}
	m, err := kpeer.ParseSNMP("Icmp: InMsgs OutDestUnreachs\nIcmp: 5 2\nTcp: MaxConn ActiveOpens\nTcp: -1 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if m["Icmp.OutDestUnreachs"] != 2 || m["Tcp.ActiveOpens"] != 3 || m["Icmp.InMsgs"] != 5 {
		t.Fatalf("ParseSNMP = %v", m)
	}
	for _, bad := range []string{"", "Icmp: A B\nIcmp: 1\n", "Icmp: A\nIp: 1\n", "Icmp: A\nIcmp: z\n"} {
		if _, err := kpeer.ParseSNMP(bad); err == nil {
			t.Errorf("ParseSNMP(%q) succeeded", bad)
		}
	}
}
