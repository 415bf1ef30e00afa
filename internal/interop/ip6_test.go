package interop

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/internal/testnet"
)

// The IPv6 underlay, on the same tap as the IPv4 one.
const (
	hostUnder6  = "2001:db8::1"
	guestUnder6 = "2001:db8::2"
)

// ip6case is one line of the IPv6-underlay matrix: the same words on both
// sides, the kernel's defaults otherwise (encaplimit 4, hoplimit 64).
type ip6case struct {
	name   string
	mode   string // ip6gre, ip6gretap, ip6ip6, ipip6 or any
	words  []string
	v4, v6 bool // inner families carried
	run    func(t *testing.T, e *env, c ip6case)
	// fou, when not 0, carries the tunnel inside UDP to that port (encap
	// fou; `ip fou add port … -6` in the guest).
	fou int
}

func ip6Matrix() []ip6case {
	kcs := []string{"key", "42", "csum", "seq"}
	return []ip6case{
		{name: "ip6gre", mode: "ip6gre", v4: true, v6: true},
		{name: "ip6gre-key", mode: "ip6gre", words: kcs[:2], v4: true, v6: true},
		{name: "ip6gre-csum", mode: "ip6gre", words: []string{"csum"}, v4: true, v6: true},
		{name: "ip6gre-seq", mode: "ip6gre", words: []string{"seq"}, v4: true, v6: true},
		{name: "ip6gre-key-csum-seq", mode: "ip6gre", words: kcs, v4: true, v6: true},
		{name: "ip6ip6", mode: "ip6ip6", v6: true},
		{name: "ipip6", mode: "ipip6", v4: true},
		// One tunnel, both families: the guest's `ip link add … type
		// ip6tnl mode any` with its defaults.
		{name: "any", mode: "any", v4: true, v6: true},
		{name: "neg/any-encaplimit-0", mode: "any", v6: true, run: ip6EncapLimitZero},
		{name: "ip6gre-keepalive", mode: "ip6gre", words: []string{"key", "5", "keepalive", "0.2", "3"}, run: ip6Keepalive},
		{name: "neg/ip6gre-key-mismatch", mode: "ip6gre", words: []string{"key", "1"}, v4: true, run: ip6KeyMismatch},
		{name: "neg/encaplimit-0", mode: "ip6ip6", v6: true, run: ip6EncapLimitZero},
		// Ethernet over ip6gre: the guest's `ip link add … type ip6gretap`.
		{name: "ip6gretap-key-csum-seq", mode: "ip6gretap", words: kcs, v4: true, v6: true},
		// Each side's ip6gretap device a port of a bridge br0 holding
		// the inner addresses, as gretap's bridged cases.
		{name: "ip6gretap/bridged", mode: "ip6gretap", v4: true, v6: true, run: ip6gretapBridged},
		// Inside UDP over IPv6 (UDP checksums), with the kernel's default
		// encapsulation limit between the IPv6 and UDP headers.
		{name: "fou/ip6gre-key-csum-seq", mode: "ip6gre", words: kcs, v4: true, v6: true, fou: 4754},
		{name: "fou/ipip6", mode: "ipip6", v4: true, fou: 5555},
		{name: "fou/ip6ip6", mode: "ip6ip6", v6: true, fou: 5556},
		// The kernel's ip6tnl mode any inside UDP, against gretun's
		// ip6ip6 there (gretun refuses mode any with encap fou).
		{name: "neg/fou-any", mode: "ip6ip6", v6: true, fou: 5557, run: ip6AnyFOU},
		// gretun a multipoint ip6gre hub (no remote, the kernel's inner
		// addresses neighbours), the kernel an ordinary ip6gre spoke.
		{name: "multipoint/gretun-hub-kernel-spoke", mode: "ip6gre", words: []string{"key", "7"}, v4: true, v6: true, run: ip6KernelSpoke},
		{name: "multipoint/fou-gretun-hub-kernel-spoke", mode: "ip6gre", words: []string{"key", "7", "csum"}, v4: true, v6: true, fou: 4754, run: ip6KernelSpoke},
	}
}

// TestInteropIP6 runs the IPv6-underlay matrix against the kernel's ip6gre
// and ip6tnl, with the kernel's defaults and its NIC's default offloads:
// ping and TCP both ways for each inner family, the same device MTU on
// both sides, both sides' packets carrying the encapsulation limit option
// of 4 and hop limit 64 on the wire, and the negative cases on counters.
func TestInteropIP6(t *testing.T) { runIP6(t, false, ip6Matrix()) }

// TestInteropIP6NoChecksumOffload runs the checksummed ip6gre case against
// a guest that computes every checksum itself.
func TestInteropIP6NoChecksumOffload(t *testing.T) {
	var cases []ip6case
	for _, c := range ip6Matrix() {
		if strings.Contains(c.name, "csum") {
			cases = append(cases, c)
		}
	}
	runIP6(t, true, cases)
}

func runIP6(t *testing.T, noOffload bool, cases []ip6case) {
	e := bootPeer(t, noOffload)
	if err := e.n.Addr(e.ns, tap, hostUnder6+"/64"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.Run("ip -6 addr add " + guestUnder6 + "/64 dev eth0 nodad"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			guestWords := c.words
			switch c.name {
			case "neg/ip6gre-key-mismatch":
				guestWords = []string{"key", "2"}
			case "ip6gre-keepalive":
				guestWords = []string{"key", "5"} // the kernel has no keepalives
			}
			words := c.allWords()
			if c.fou != 0 {
				guestFOU6(t, e, c.fou, nextHeader(c.mode))
				guestWords = words
			}
			guestTunnel6(t, e, c.mode, guestWords)
			args := append([]string{"run", tunName, "mode", c.mode, "remote", guestUnder6, "local", hostUnder6}, words...)
			e.gretun = startGretunCmd(t, e, c.v6, args...)
			if c.run != nil {
				c.run(t, e, c)
			} else {
				traffic6(t, e, c)
			}
			e.stopGretun(t, e.gretun)
		})
	}
}

// allWords are c's words with, inside UDP, the encap words.
func (c ip6case) allWords() []string {
	if c.fou == 0 {
		return c.words
	}
	return append(c.words[:len(c.words):len(c.words)], "encap", "fou", "encap-sport", "auto", "encap-dport", strconv.Itoa(c.fou))
}

// guestFOU6 opens the guest's IPv6 fou port for protocol proto, removed
// at the end of the test.
func guestFOU6(t *testing.T, e *env, port, proto int) {
	t.Helper()
	if out, err := e.g.Run(fmt.Sprintf("ip fou add port %d ipproto %d -6", port, proto)); err != nil {
		t.Fatalf("ip fou add: %v: %s", err, out)
	}
	t.Cleanup(func() { e.g.Run(fmt.Sprintf("ip fou del port %d -6", port)) })
}

// guestTunnel6 creates gt1 in the guest with `ip -6 tunnel add`, the
// kernel's defaults but for words, and the inner addresses.
func guestTunnel6(t *testing.T, e *env, mode string, words []string) {
	t.Helper()
	add := fmt.Sprintf("ip -6 tunnel add %s mode %s", tunName, mode)
	switch {
	case mode == "ip6gretap": // an Ethernet device: `ip link`, same words
		add = fmt.Sprintf("ip link add %s type ip6gretap", tunName)
	case mode == "any": // as users write it, though `ip -6 tunnel` takes it too
		add = fmt.Sprintf("ip link add %s type ip6tnl mode any", tunName)
	case slices.Contains(words, "fou") && mode == "ip6gre": // `ip -6 tunnel` has no encap words
		add = fmt.Sprintf("ip link add %s type ip6gre", tunName)
	case slices.Contains(words, "fou"):
		add = fmt.Sprintf("ip link add %s type ip6tnl mode %s", tunName, mode)
	}
	cmd := fmt.Sprintf("%s remote %s local %s %s && ip addr add %s/30 dev %s && ip -6 addr add %s/64 dev %s nodad && ip link set %s up",
		add, hostUnder6, guestUnder6, strings.Join(words, " "), guestIn4, tunName, guestIn6, tunName, tunName)
	if out, err := e.g.Run(cmd); err != nil {
		e.g.Run("ip link del " + tunName)
		t.Fatalf("guest tunnel: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if _, err := e.g.Run(fmt.Sprintf("if [ -e /sys/class/net/%s ]; then ip link del %s; fi", tunName, tunName)); err != nil {
			t.Errorf("removing the guest's tunnel: %v", err)
		}
	})
}

// traffic6 is the standard check over IPv6: the same device MTU on both
// sides, ping (counted) and TCP both ways for each inner family, Linux's
// encapsulation limit and hop limit on both sides' packets, no errors.
func traffic6(t *testing.T, e *env, c ip6case) {
	if h, g := hostMTU(t, e), guestMTU(t, e); h != g {
		t.Errorf("device MTU: gretun %d, kernel %d", h, g)
	}
	capt := startCapture6(t, e)
	g0 := ifStats(t, e)
	r0, _ := gretunCounters(t, e, tunName)
	for _, v6 := range []bool{false, true} {
		if v6 && !c.v6 || !v6 && !c.v4 {
			continue
		}
		dst, src, fam := guestIn4, hostIn4, ""
		if v6 {
			dst, src, fam = guestIn6, hostIn6, "-6 "
		}
		if s, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "5", dst); s != 3 || r != 3 {
			t.Errorf("ping gretun → kernel %s: %d of %d answered:\n%s", dst, r, s, out)
		}
		if s, r, out := guestPing(t, e, fam+"-c 3 -i 0.2 -W 5 "+src); s != 3 || r != 3 {
			t.Errorf("ping kernel → gretun %s: %d of %d answered:\n%s", src, r, s, out)
		}
		tcpToGuest(t, e, dst)
		tcpFromGuest(t, e, src)
	}
	if c.v4 {
		// Packets of exactly the MTU fill the 1500-byte underlay both
		// ways: the overheads agree byte for byte.
		size := strconv.Itoa(hostMTU(t, e) - 28)
		if s, r, out := hostPing(t, e, "-c", "2", "-i", "0.2", "-W", "5", "-M", "do", "-s", size, guestIn4); s != 2 || r != 2 {
			t.Errorf("DF ping of the MTU, gretun → kernel: %d of %d answered:\n%s", r, s, out)
		}
		if s, r, out := guestPing(t, e, "-c 2 -i 0.2 -W 5 -s "+size+" "+hostIn4); s != 2 || r != 2 {
			t.Errorf("ping of the MTU, kernel → gretun: %d of %d answered:\n%s", r, s, out)
		}
	}
	r1, _ := gretunCounters(t, e, tunName)
	noErrors(t, ifStats(t, e).Sub(g0), sub(r1, r0))
	if d := sub(r1, r0); d.RxPackets < xferSize/1500 || d.TxPackets < xferSize/1500 {
		t.Errorf("gretun counted %d packets in and %d out", d.RxPackets, d.TxPackets)
	}
	pkts := capt.stop6(t)
	for _, src := range []string{hostUnder6, guestUnder6} {
		n := 0
		nexts := map[int]bool{}
		for _, p := range pkts {
			if p.src != src {
				continue
			}
			n++
			nexts[p.next] = true
			// Both label every flow, ip6gretap's frames too (from
			// the IP packet they carry).
			noLabel := p.flow == 0
			next, limit := nextHeader(c.mode), !slices.Contains(c.words, "encaplimit")
			switch {
			case c.fou != 0:
				next = 17
			case c.mode == "any" && p.inner == 4: // per packet, by the inner version
				next = 4
			case c.mode == "any":
				next = 41
			}
			if p.hopLimit != 64 || p.hasLimit != limit || limit && p.limit != 4 || p.next != next || noLabel {
				t.Errorf("from %s: hop limit %d, encapsulation limit %d (%v), next header %d, flow label %#x; want 64, 4, %d and an automatic label as Linux's defaults",
					src, p.hopLimit, p.limit, p.hasLimit, p.next, p.flow, next)
				break
			}
		}
		if n < 6 {
			t.Errorf("saw %d tunnel packets from %s on the wire", n, src)
		}
		if c.mode == "any" && (!nexts[4] || !nexts[41]) {
			t.Errorf("mode any from %s: next headers %v on the wire, want both 4 and 41", src, nexts)
		}
	}
}

func nextHeader(mode string) int {
	switch mode {
	case "ip6ip6":
		return 41
	case "ipip6":
		return 4
	}
	return 47
}

// ip6gretapBridged: the standard check with each side's ip6gretap device
// a port of a bridge br0 that holds both inner addresses; ARP and neighbour
// discovery resolve the guest's br0 MAC address.
func ip6gretapBridged(t *testing.T, e *env, c ip6case) {
	bridgeTunnel(t, e, true)
	traffic6(t, e, c)
	mac, err := e.g.Run("cat /sys/class/net/br0/address")
	if err != nil {
		t.Fatal(err)
	}
	mac = strings.TrimSpace(mac)
	for _, dst := range []string{guestIn4, guestIn6} {
		if neigh, _ := e.n.Exec(e.ns, "ip", "neigh", "show", dst); !strings.Contains(neigh, mac) {
			t.Errorf("neighbour %s: %q, want the guest's br0 address %s", dst, neigh, mac)
		}
	}
}

// ip6Keepalive: gretun's ip6gre keepalives, whose inner packet is IPv6,
// come back from the kernel when it forwards IPv6, as a Cisco router's do
// over IPv4; when it stops forwarding the line goes down, and up again.
func ip6Keepalive(t *testing.T, e *env, c ip6case) {
	forward := func(on string) {
		t.Helper()
		if _, err := e.g.Run("echo " + on + " > /proc/sys/net/ipv6/conf/all/forwarding"); err != nil {
			t.Fatal(err)
		}
	}
	forward("1")
	defer forward("0")
	state := func() (string, uint64) {
		out, err := e.n.Exec(e.ns, e.bin, "-j", "tunnel", "show", tunName)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tunnels []struct {
				Keepalive *struct {
					State    string `json:"state"`
					Received uint64 `json:"received"`
				} `json:"keepalive"`
			} `json:"tunnels"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Tunnels) != 1 || doc.Tunnels[0].Keepalive == nil {
			t.Fatalf("tunnel show: %v: %s", err, out)
		}
		k := doc.Tunnels[0].Keepalive
		return k.State, k.Received
	}
	waitState := func(want string, minReceived uint64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			s, r := state()
			if s == want && r >= minReceived {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("keepalive state %s with %d received, want %s and %d", s, r, want, minReceived)
			}
		}
	}
	waitState("up", 5)
	forward("0")
	waitState("down", 0)
	forward("1")
	waitState("up", 0)
}

// ip6KeyMismatch: keys 1 and 2 do not talk; gretun counts the kernel's
// packets as matching no tunnel and the kernel's tunnel receives nothing.
func ip6KeyMismatch(t *testing.T, e *env, c ip6case) {
	g0 := ifStats(t, e)
	_, u0 := gretunCounters(t, e, tunName)
	rx0 := tunRx(t, e)
	if _, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "1", guestIn4); r != 0 {
		t.Errorf("ping gretun (key 1) → kernel (key 2) answered:\n%s", out)
	}
	if _, r, out := guestPing(t, e, "-c 3 -i 0.2 -W 1 "+hostIn4); r != 0 {
		t.Errorf("ping kernel (key 2) → gretun (key 1) answered:\n%s", out)
	}
	if d := ifStats(t, e).Sub(g0); d.RxPackets != 0 {
		t.Errorf("the kernel's key-2 tunnel received %d packets", d.RxPackets)
	}
	_, u1 := gretunCounters(t, e, tunName)
	if d := u1.Drops["no-tunnel"] - u0.Drops["no-tunnel"]; d < 3 {
		t.Errorf("gretun counted %d of the kernel's key-2 packets as matching no tunnel, want 3", d)
	}
	if d := tunRx(t, e) - rx0; d != 0 {
		t.Errorf("gretun wrote %d packets to its device", d)
	}
}

// ip6EncapLimitZero: gretun as a tunnel entry point (RFC 2473 section
// 6.6). A packet that is itself an IPv6 tunnel packet with an encapsulation
// limit of 0 is refused, counted and answered with a Parameter Problem;
// with a limit of 1 it crosses to the kernel.
func ip6EncapLimitZero(t *testing.T, e *env, c ip6case) {
	g0 := ifStats(t, e)
	r0, _ := gretunCounters(t, e, tunName)
	for _, limit := range []byte{0, 1} {
		if err := sendWithLimit(e.ns, guestIn6, limit, 3); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var r1 = r0
	for time.Now().Before(deadline) {
		r1, _ = gretunCounters(t, e, tunName)
		if ifStats(t, e).Sub(g0).RxPackets >= 3 && r1.TxEncapLimit-r0.TxEncapLimit >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := r1.TxEncapLimit - r0.TxEncapLimit; d != 3 {
		t.Errorf("gretun refused %d packets with an encapsulation limit of 0, want 3", d)
	}
	if d := r1.TxICMP - r0.TxICMP; d != 3 {
		t.Errorf("gretun sent %d Parameter Problems, want 3", d)
	}
	// IPv6 on the device brings its own packets (router solicitations).
	if d := ifStats(t, e).Sub(g0).RxPackets; d < 3 {
		t.Errorf("the kernel received %d packets, want at least the 3 with a limit of 1", d)
	}
}

// ip6AnyFOU: the kernel takes `ip link add … type ip6tnl mode any … encap
// fou`, but its fou port has one protocol (here 41), and it sends its IPv4
// packets to that port all the same: against gretun's ip6ip6 inside UDP on
// that port, IPv6 crosses both ways and the kernel's IPv4 is dropped and
// counted. gretun refuses mode any with encap fou in one line.
func ip6AnyFOU(t *testing.T, e *env, c ip6case) {
	words := strings.Join(c.allWords(), " ")
	cmd := fmt.Sprintf("ip link del %s && ip link add %s type ip6tnl mode any remote %s local %s %s && ip addr add %s/30 dev %s && ip -6 addr add %s/64 dev %s nodad && ip link set %s up",
		tunName, tunName, hostUnder6, guestUnder6, words, guestIn4, tunName, guestIn6, tunName, tunName)
	if out, err := e.g.Run(cmd); err != nil {
		t.Fatalf("the kernel refused ip6tnl mode any inside fou: %v: %s", err, out)
	}
	if out, _ := e.g.Run("ip -6 tunnel show " + tunName); !strings.Contains(out, "any/ipv6") {
		t.Errorf("the guest's tunnel: %q, want mode any/ipv6", out)
	}
	out, err := e.n.Exec(e.ns, append([]string{e.bin, "run", "gt2", "mode", "any", "remote", guestUnder6, "local", hostUnder6}, c.allWords()...)...)
	if want := "encap fou needs mode ip6ip6 or ipip6, not any"; err == nil || !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("gretun run mode any … encap fou: %v, %q; want one line with %q", err, out, want)
	}
	if s, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "5", guestIn6); s != 3 || r != 3 {
		t.Errorf("ping gretun → kernel %s: %d of %d answered:\n%s", guestIn6, r, s, out)
	}
	if s, r, out := guestPing(t, e, "-6 -c 3 -i 0.2 -W 5 "+hostIn6); s != 3 || r != 3 {
		t.Errorf("ping kernel → gretun %s: %d of %d answered:\n%s", hostIn6, r, s, out)
	}
	r0, _ := gretunCounters(t, e, tunName)
	if _, r, out := guestPing(t, e, "-c 3 -i 0.2 -W 1 "+hostIn4); r != 0 {
		t.Errorf("IPv4 ping from the kernel's mode any inside fou answered:\n%s", out)
	}
	r1, _ := gretunCounters(t, e, tunName)
	var dropped uint64
	for reason, n := range r1.Drops {
		dropped += n - r0.Drops[reason]
	}
	if dropped < 3 || r1.RxPackets != r0.RxPackets {
		t.Errorf("the kernel's IPv4 at gretun's ip6ip6 port: %d dropped, %d received (drops %v), want 3 dropped", dropped, r1.RxPackets-r0.RxPackets, r1.Drops)
	}
}

// sendWithLimit sends count IPv6 packets (no next header) from ns to dst
// through a raw socket whose destination options carry an encapsulation
// limit (IPV6_DSTOPTS): a tunnel packet, as far as the next entry point
// is concerned.
func sendWithLimit(ns, dst string, limit byte, count int) error {
	return testnet.InNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, 59) // no next header
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		opt := []byte{0, 0, 4, 1, limit, 1, 1, 0}
		if err := unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, string(opt)); err != nil {
			return fmt.Errorf("IPV6_DSTOPTS: %w", err)
		}
		a := netip.MustParseAddr(dst).As16()
		for range count {
			if err := unix.Sendto(fd, []byte("gretun"), 0, &unix.SockaddrInet6{Addr: a}); err != nil {
				return err
			}
		}
		return nil
	})
}

// wire6 is an IPv6 tunnel packet as seen on the tap.
type wire6 struct {
	src            string
	hopLimit, next int // next: the tunnel protocol after the options
	flow           uint32
	limit          int
	hasLimit       bool
	inner          int // the IP version after the tunnel header, of IP in IPv6
}

type capture6 struct{ *capture }

// startCapture6 records the IPv6 underlay with tcpdump until stop6.
func startCapture6(t *testing.T, e *env) capture6 {
	t.Helper()
	c := &capture{file: fmt.Sprintf("%s/cap6-%d.pcap", e.tmp, time.Now().UnixNano()), errb: &testnet.Buffer{}}
	c.cmd = exec.Command("ip", "netns", "exec", e.ns, "tcpdump", "-i", tap, "-n", "-U", "--immediate-mode", "-s", "128", "-w", c.file, "ip6")
	c.cmd.Stderr = c.errb
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.errb.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", c.errb.String())
		}
	}
	return capture6{c}
}

func (c capture6) stop6(t *testing.T) []wire6 {
	t.Helper()
	c.end()
	b, err := os.ReadFile(c.file)
	if err != nil || len(b) < 24 {
		t.Fatalf("reading the capture: %v (tcpdump: %s)", err, c.errb.String())
	}
	os.Remove(c.file)
	var out []wire6
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		f := b[off+16 : min(off+16+n, len(b))]
		off += 16 + n
		if len(f) < 14+48 || binary.BigEndian.Uint16(f[12:]) != 0x86dd {
			continue
		}
		ip := f[14:]
		w := wire6{src: netip.AddrFrom16([16]byte(ip[8:24])).String(), hopLimit: int(ip[7]), next: int(ip[6]),
			flow: binary.BigEndian.Uint32(ip) & 0xfffff}
		at := 40
		if w.next == 60 {
			w.next, at = int(ip[40]), 48
			if ip[42] == 4 && ip[43] == 1 {
				w.limit, w.hasLimit = int(ip[44]), true
			}
		}
		if len(ip) > at {
			w.inner = int(ip[at] >> 4)
		}
		if w.next == 47 || w.next == 41 || w.next == 4 || w.next == 17 {
			out = append(out, w)
		}
	}
	return out
}
