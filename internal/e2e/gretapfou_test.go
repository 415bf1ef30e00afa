package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
)

// TestGretapFOU: gretap and ip6gretap inside UDP (encap fou) between two
// gretun routers, addressed as one Ethernet link: ARP or neighbour
// discovery, ping and a checksummed TCP transfer both ways, the MTU 8
// bytes below plain gretap's, and keepalives on A reflected by B inside
// UDP.
func TestGretapFOU(t *testing.T) {
	for _, c := range []struct {
		mode, a, b string
		mtu        int
	}{
		{"gretap", UnderA, UnderB, 1500 - 38 - 4 - 8},
		{"ip6gretap", Under6A, Under6B, 1500 - 66 - 4 - 8},
	} {
		t.Run(c.mode, func(t *testing.T) {
			tp := Pair(t)
			tp.underlay6()
			words := []string{"mode", c.mode, "key", "7", "encap", "fou"}
			tp.Run(tp.A, "gtap", append(words, "remote", c.b, "local", c.a, "keepalive", kaPeriod, kaRetries)...)
			tp.Run(tp.B, "gtap", append(words, "remote", c.a, "local", c.b)...)
			tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1/24", "dev", "gtap")
			tp.Sh(tp.B, "ip", "addr", "add", "198.51.100.3/24", "dev", "gtap")
			if l := tp.link(tp.A, "gtap"); l.LinkType != "ether" || l.MTU != c.mtu {
				t.Errorf("device: %+v, want Ethernet with MTU %d", l, c.mtu)
			}
			tp.Ping(tp.A, "198.51.100.3")
			tp.Ping(tp.B, "198.51.100.1", "-s", fmt.Sprint(c.mtu-28), "-M", "do")
			tp.Transfer(tp.A, tp.B, "198.51.100.3", 4<<20)
			tp.Transfer(tp.B, tp.A, "198.51.100.1", 1<<20)
			tp.waitFor("keepalives answered", func() bool {
				k := tp.keepalive(tp.A, "gtap")
				return k.State == "up" && k.Received >= 5
			})
			sa, sb := tp.Stats(tp.A, "gtap"), tp.Stats(tp.B, "gtap")
			if sa.RxErrors != 0 || sb.RxErrors != 0 || sb.RxPackets < 1000 || sb.Reflected < 5 {
				t.Errorf("counters: A %+v B %+v", sa, sb)
			}
		})
	}
}

// TestGretapFOUKernelPeer: gretun's gretap inside UDP against Linux's own
// (`ip fou add port 4754 ipproto 47` and `ip link add … type gretap …
// encap fou encap-sport auto encap-dport 4754`) in a qemu guest with its
// default offloads, and ip6gretap likewise over IPv6 (`ip fou add … -6`,
// `type ip6gretap`): the same MTU, ARP, ping both ways (full-size too)
// and a checksummed TCP transfer each way.
func TestGretapFOUKernelPeer(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)
	guest := func(cmd string) string {
		t.Helper()
		out, err := g.Run(cmd)
		if err != nil {
			t.Fatalf("guest: %s: %v: %s", cmd, err, out)
		}
		return strings.TrimSpace(out)
	}
	tp := &Topology{Net: n, T: t, A: ns}
	tp.must(n.Addr(ns, "kp0", Under6A+"/64"))
	guest("ip -6 addr add " + Under6B + "/64 dev eth0 nodad")
	for _, c := range []struct {
		dev, mode, local, remote, fou, words, host, guest string
	}{
		// csum and seq: Linux 6.1's GRO drops the GRE-in-UDP segments it
		// merges, which it never does with either (README, "GRE and IPIP
		// inside UDP"); TCP toward the guest would crawl without.
		{"gt1", "gretap", UnderB, UnderA, "", "key 5 csum seq", "198.51.100.1", "198.51.100.2"},
		{"gt2", "ip6gretap", Under6B, Under6A, " -6", "key 6 csum seq", "203.0.113.1", "203.0.113.2"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			tp.T = t
			guest("ip fou add port 4754 ipproto 47" + c.fou + " && ip link add " + c.dev + " type " + c.mode + " remote " + c.remote +
				" local " + c.local + " " + c.words + " encap fou encap-sport auto encap-dport 4754 && ip addr add " + c.guest +
				"/24 dev " + c.dev + " && ip link set " + c.dev + " up")
			// Stopped at the end, so the next one serves the control socket.
			p := tp.Run(ns, c.dev, append([]string{"mode", c.mode, "remote", c.local, "local", c.remote, "encap", "fou"}, strings.Fields(c.words)...)...)
			defer p.Stop()
			tp.Sh(ns, "ip", "addr", "add", c.host+"/24", "dev", c.dev)
			mtu := tp.link(ns, c.dev).MTU
			if kmtu := guest("cat /sys/class/net/" + c.dev + "/mtu"); kmtu != fmt.Sprint(mtu) {
				t.Errorf("gretun's %s-in-UDP MTU is %d, the kernel's %s", c.mode, mtu, kmtu)
			}
			tp.Ping(ns, c.guest)
			tp.Ping(ns, c.guest, "-s", fmt.Sprint(mtu-28), "-M", "do")
			if out := guest("ping -c 3 -i 0.2 -W 5 -s " + fmt.Sprint(mtu-28) + " " + c.host); !strings.Contains(out, " 0% packet loss") {
				t.Errorf("ping kernel → gretun:\n%s", out)
			}
			if neigh := tp.Sh(ns, "ip", "neigh", "show", c.guest); !strings.Contains(neigh, guest("cat /sys/class/net/"+c.dev+"/address")) {
				t.Errorf("ARP: %q, want the guest's %s address", neigh, c.dev)
			}
			kernelTCP(t, ns, g, c.guest, c.host)
			if s := tp.Stats(ns, c.dev); s.RxErrors != 0 || s.RxPackets < 500 {
				t.Errorf("gretun's counters: %+v", s)
			}
		})
	}
}

// kernelTCP sends 1 MiB over TCP from ns to the guest at guestIP and 1 MiB
// back to ns at hostIP, and fails unless both arrive whole (SHA-256).
func kernelTCP(t *testing.T, ns string, g *kpeer.Guest, guestIP, hostIP string) {
	t.Helper()
	data := make([]byte, 1<<20)
	rand.Read(data)
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	if _, err := g.Run(`rm -f /tmp/rx; (nc -l -p 5001 -e sh -c 'cat > /tmp/rx' </dev/null >/dev/null 2>&1 &)
for i in $(seq 100); do netstat -ltn | grep -q ':5001 ' && exit 0; sleep 0.1; done; echo not listening; exit 1`); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if err := testnet.InNS(ns, func() (err error) {
		conn, err = (&net.Dialer{Timeout: 20 * time.Second}).Dial("tcp", net.JoinHostPort(guestIP, "5001"))
		return err
	}); err != nil {
		t.Fatalf("TCP gretun → kernel: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	if _, err := conn.Write(data); err != nil {
		t.Fatalf("TCP gretun → kernel: writing: %v", err)
	}
	conn.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, conn) // the guest closes once cat has written the file
	if got, _ := g.Run("sha256sum /tmp/rx"); !strings.HasPrefix(got, want) {
		t.Errorf("TCP gretun → kernel: the guest got %q, want %s", got, want)
	}

	var l net.Listener
	if err := testnet.InNS(ns, func() (err error) {
		l, err = net.Listen("tcp", net.JoinHostPort(hostIP, "5002"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(90 * time.Second))
		h := sha256.New()
		io.Copy(h, c)
		got <- fmt.Sprintf("%x", h.Sum(nil))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := g.RunContext(ctx, "head -c 1048576 /dev/urandom > /tmp/tx && sha256sum /tmp/tx && nc "+hostIP+" 5002 < /tmp/tx")
	if err != nil {
		t.Fatalf("TCP kernel → gretun: %v: %s", err, sum)
	}
	if h := <-got; !strings.HasPrefix(sum, h) {
		t.Errorf("TCP kernel → gretun: received %s, the guest sent %q", h, sum)
	}
}
