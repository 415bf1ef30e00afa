package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
)

// soakDuration is how long TestSoak carries traffic: GRETUN_SOAK (a Go
// duration; `make soak` sets 10m), else a short run for `make test`.
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("GRETUN_SOAK")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 10*time.Second {
		t.Fatalf("GRETUN_SOAK=%q: want a duration of 10s or more", s)
	}
	return d
}

// soakConf is each daemon's config file: GRE with keys, checksums,
// sequence numbers and keepalives, and IPIP. ttl is what reloads change.
func soakConf(local, remote string, ttl int) string {
	return fmt.Sprintf(`ka mode gre remote %[2]s local %[1]s key 1 csum seq keepalive 0.2 3
s1 mode gre remote %[2]s local %[1]s key 2 seq ttl %[3]d
s2 mode gre remote %[2]s local %[1]s key 3 csum ttl 64
s3 mode ipip remote %[2]s local %[1]s ttl %[3]d
`, local, remote, ttl)
}

// accounts is one daemon's view of the outer packets it sent and received.
type accounts struct{ sent, received uint64 }

// account reads a daemon's counters: outer packets it sent (inner packets
// sent, less those the underlay refused, plus keepalives and reflected
// probes) and received (every packet gretun read from the underlay lands
// in exactly one of: delivered, dropped by a tunnel with a reason, matched
// no tunnel, a keepalive reply, a reflected probe).
func (tp *Topology) account(ns string) accounts {
	tp.T.Helper()
	r := tp.G(ns, "-s", "-j", "tunnel", "show")
	if r.code != 0 {
		tp.T.Fatalf("tunnel show in %s: %s", ns, r.stderr)
	}
	var v struct {
		Tunnels   []tunnel.Status
		Unmatched tunnel.Stats
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		tp.T.Fatal(err)
	}
	var a accounts
	for _, t := range v.Tunnels {
		s := t.Stats
		a.sent += s.TxPackets + s.TxFragmented - s.TxNoBufs - s.TxNoRoute + s.Reflected
		a.received += s.RxPackets + s.RxErrors + s.RxKeepaliveUnsolicited + s.Reflected
		if k := t.Keepalive; k != nil {
			a.sent += k.Sent
			a.received += k.Received + k.Rejected
		}
	}
	for _, n := range v.Unmatched.Drops {
		a.received += n
	}
	// Reflected probes the underlay refused are counted here.
	a.sent -= v.Unmatched.TxErrors
	return a
}

// window is a reading of both daemons' accounts and loss counters, with
// how much A's own counters moved while B's were read (A read, B read, A
// read again).
type window struct {
	a, b         accounts
	lossA, lossB uint64
	// slack bounds what straddles the reading: a packet A sent after its
	// read that B counted before its own (at most A's sends in the window),
	// or one B sent that A counted after its read (at most A's receipts).
	slack accounts
}

// quietAccounts reads both daemons' accounts and the loss counters,
// preferring a moment when A sent and received nothing while B's were
// read. The keepalives never stop: a probe A sends after its account is
// read and B reflects before B's is read would count as sent by A and
// never received by B, its reflection as received by A and never sent by
// B. A packet takes well under a millisecond; B's reads take tens of them,
// and on a loaded machine more than the 0.2 s between keepalives: then the
// reading whose window saw the least of A's traffic is taken, with that
// traffic as its slack.
func (tp *Topology) quietAccounts() window {
	tp.T.Helper()
	var best window
	for try := 0; try < 20; try++ {
		var w window
		w.a, w.lossA = tp.account(tp.A), tp.lossCounters(tp.A)
		w.b, w.lossB = tp.account(tp.B), tp.lossCounters(tp.B)
		a2, lossA2 := tp.account(tp.A), tp.lossCounters(tp.A)
		w.slack = accounts{a2.sent - w.a.sent, a2.received - w.a.received + lossA2 - w.lossA}
		if try == 0 || w.slack.sent+w.slack.received < best.slack.sent+best.slack.received {
			best = w
		}
		if best.slack == (accounts{}) {
			break
		}
	}
	return best
}

// within reports whether x and y differ by at most d.
func within(x, y, d uint64) bool { return x <= y+d && y <= x+d }

// nftCounter reads a named nftables counter's packets in ns.
func (tp *Topology) nftCounter(ns, name string) uint64 {
	tp.T.Helper()
	return tp.nftCounterIn(ns, "soak", name)
}

// nftCounterIn reads the packets of the named counter of an inet table.
func (tp *Topology) nftCounterIn(ns, table, name string) uint64 {
	tp.T.Helper()
	out := tp.Sh(ns, "nft", "list", "counter", "inet", table, name)
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "packets" {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	tp.T.Fatalf("nft counter %s in %s: %q", name, ns, out)
	return 0
}

// rawDrops is what the kernel dropped at ns's raw GRE and IPIP sockets
// because their receive buffers were full: the drops column of
// /proc/net/raw, whose local port is the protocol.
func (tp *Topology) rawDrops(ns string) uint64 {
	tp.T.Helper()
	var sum uint64
	for _, line := range strings.Split(tp.Sh(ns, "cat", "/proc/net/raw"), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		if _, proto, _ := strings.Cut(f[1], ":"); proto == "002F" || proto == "0004" {
			n, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
			sum += n
		}
	}
	return sum
}

// lossCounters is every counter of packets lost between the daemons in
// ns: the loss and outage rules, full raw sockets, the link's drops.
func (tp *Topology) lossCounters(ns string) uint64 {
	rx, tx := tp.linkDrops(ns)
	return tp.nftCounter(ns, "loss") + tp.nftCounter(ns, "outage") + tp.rawDrops(ns) + rx + tx
}

// linkDrops is what the underlay link wan dropped in ns, receiving
// (rx_dropped: the backlog was full) and sending (tx_dropped).
func (tp *Topology) linkDrops(ns string) (rx, tx uint64) {
	tp.T.Helper()
	read := func(what string) uint64 {
		n, err := strconv.ParseUint(strings.TrimSpace(tp.Sh(ns, "cat", "/sys/class/net/wan/statistics/"+what)), 10, 64)
		if err != nil {
			tp.T.Fatal(err)
		}
		return n
	}
	return read("rx_dropped"), read("tx_dropped")
}

// vitals are what must stay flat: goroutines, heap in use and resident
// memory, from the daemon's own metrics.
type vitals struct{ goroutines, heap, rss float64 }

func (v vitals) String() string {
	return fmt.Sprintf("%.0f goroutines, heap in use %.1f MiB, resident %.1f MiB", v.goroutines, v.heap/(1<<20), v.rss/(1<<20))
}

func (tp *Topology) vitals(ns, addr string) vitals {
	tp.T.Helper()
	f := tp.scrape(ns, addr)
	g, _ := f.Value("go_goroutines")
	h, _ := f.Value("go_memstats_heap_inuse_bytes")
	r, _ := f.Value("process_resident_memory_bytes")
	return vitals{g, h, r}
}

// TestSoak: two daemons with several tunnels (keys, csum, seq, keepalives)
// carry iperf3 streams through 2 % random underlay loss (nftables numgen
// random), while tunnels are changed and the config reloaded (SIGHUP), and
// a keepalive outage comes and goes. At the end goroutines and memory are
// flat, every packet one daemon sent is accounted for by the other's
// counters or by the loss rules' counters, and both daemons still serve.
// Short in `make test`; `make soak` runs it for 10 minutes (GRETUN_SOAK).
func TestSoak(t *testing.T) {
	for _, tool := range []string{"iperf3", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it)", tool)
		}
	}
	dur := soakDuration(t)
	tp := Pair(t)
	dir := t.TempDir()
	confA, confB := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	writeFile(t, confA, soakConf(UnderA, UnderB, 64))
	writeFile(t, confB, soakConf(UnderB, UnderA, 64))
	const maddr = "127.0.0.1:9469"
	da := tp.Daemon(tp.A, "-c", confA, "-metrics", maddr)
	db := tp.Daemon(tp.B, "-c", confB, "-metrics", maddr)
	defer da.Stop()
	defer db.Stop()
	for i, dev := range []string{"ka", "s1", "s2", "s3"} {
		tp.Sh(tp.A, "ip", "addr", "add", fmt.Sprintf("198.51.100.%d", i+1), "peer", fmt.Sprintf("203.0.113.%d", i+1), "dev", dev)
		tp.Sh(tp.B, "ip", "addr", "add", fmt.Sprintf("203.0.113.%d", i+1), "peer", fmt.Sprintf("198.51.100.%d", i+1), "dev", dev)
	}
	// 2 % of GRE and IPIP arriving at either router is dropped and counted.
	for _, ns := range []string{tp.A, tp.B} {
		tp.Sh(ns, "nft", "add", "table", "inet", "soak")
		tp.Sh(ns, "nft", "add", "counter", "inet", "soak", "loss")
		tp.Sh(ns, "nft", "add", "counter", "inet", "soak", "outage")
		tp.Sh(ns, "nft", "add", "chain", "inet", "soak", "in", "{ type filter hook input priority 0; }")
		for _, proto := range []string{"47", "4"} {
			tp.Sh(ns, "nft", "add", "rule", "inet", "soak", "in", "ip", "protocol", proto, "numgen", "random", "mod", "100", "lt", "2", "counter", "name", "loss", "drop")
		}
	}
	tp.waitFor("keepalives up", func() bool { return tp.keepalive(tp.A, "ka").Received > 0 && tp.keepalive(tp.B, "ka").Received > 0 })
	// The accounts start now: before B's daemon ran, A's first packets
	// met no raw socket, and no counter of B's.
	w0 := tp.quietAccounts()
	a0, b0, lossA0, lossB0 := w0.a, w0.b, w0.lossA, w0.lossB

	// iperf3 through s1 (A to B) and s3 (B to A), for the whole run.
	secs := strconv.Itoa(int(dur.Seconds()))
	var clients []*Proc
	for _, s := range []struct{ srv, cli, addr, port string }{{tp.B, tp.A, "203.0.113.2", "5301"}, {tp.A, tp.B, "198.51.100.4", "5302"}} {
		log := &testnet.Buffer{}
		if _, err := tp.Net.Start(s.srv, log, log, "iperf3", "-s", "-1", "-B", s.addr, "-p", s.port); err != nil {
			t.Fatal(err)
		}
		tp.waitFor("iperf3 listening", func() bool {
			return strings.Contains(tp.Sh(s.srv, "ss", "-ltn"), s.addr+":"+s.port)
		})
		out := &testnet.Buffer{}
		cmd, err := tp.Net.Start(s.cli, out, out, "iperf3", "-c", s.addr, "-p", s.port, "-t", secs, "-b", "200M", "-i", "0")
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, &Proc{Cmd: cmd, Out: out})
	}

	start := time.Now()
	warm := max(dur/10, 2*time.Second)
	time.Sleep(warm)
	va0, vb0 := tp.vitals(tp.A, maddr), tp.vitals(tp.B, maddr)
	step := max(dur/10, 2*time.Second)
	ttl, outages, changes, reloads := 64, 0, 0, 0
	for i := 0; time.Since(start) < dur-step; i++ {
		switch i % 3 {
		case 0: // tunnel change during traffic, on the busy tunnel
			if r := tp.G(tp.A, "tunnel", "change", "s1", "ttl", strconv.Itoa(100+i)); r.code != 0 {
				t.Fatalf("tunnel change: %s", r.stderr)
			}
			changes++
		case 1: // a reload that changes two tunnels in place
			ttl = 255 - ttl + 64
			writeFile(t, confB, soakConf(UnderB, UnderA, ttl))
			hup(t, db, "configuration reloaded")
			reloads++
		case 2: // a keepalive outage: A's keepalives stop reaching B
			h := tp.Sh(tp.B, "nft", "--echo", "--handle", "add", "rule", "inet", "soak", "in", "ip", "protocol", "47", "counter", "name", "outage", "drop")
			tp.waitFor("line protocol down", func() bool { return tp.keepalive(tp.A, "ka").State == "down" })
			handle := h[strings.LastIndex(h, "# handle ")+len("# handle "):]
			tp.Sh(tp.B, "nft", "delete", "rule", "inet", "soak", "in", "handle", strings.TrimSpace(handle))
			tp.waitFor("line protocol back up", func() bool { return tp.keepalive(tp.A, "ka").State == "up" })
			outages++
		}
		tp.Exec(tp.A, "ping", "-c", "5", "-i", "0.05", "-W", "1", "203.0.113.1") // through ka
		time.Sleep(step)
	}
	// The clients run for dur from just before start: up to a step more
	// than the loop, longer than wait gives them at 10 minutes.
	time.Sleep(time.Until(start.Add(dur)))
	for _, c := range clients {
		if code := wait(t, c); code != 0 {
			t.Errorf("iperf3 client exited %d: %s", code, c.Log())
		}
	}

	// Every packet accounted for: what A sent is what B counted plus what
	// B's loss and outage rules dropped, and the other way round. Packets
	// still queued when the iperf3 clients end are retried for.
	var lost [2]uint64
	for try := 0; ; try++ {
		w := tp.quietAccounts()
		a, b, lossA, lossB := w.a, w.b, w.lossA, w.lossB
		dropB, dropA := lossB-lossB0, lossA-lossA0
		sentA, sentB := a.sent-a0.sent, b.sent-b0.sent
		gotA, gotB := a.received-a0.received, b.received-b0.received
		if within(sentA, gotB+dropB, w0.slack.sent+w.slack.sent) && within(sentB, gotA+dropA, w0.slack.received+w.slack.received) {
			if s := w0.slack.sent + w.slack.sent + w0.slack.received + w.slack.received; s > 0 {
				t.Logf("the accounts were read while keepalives crossed: up to %d packets either way are allowed for (%+d, %+d)", s, int64(sentA)-int64(gotB+dropB), int64(sentB)-int64(gotA+dropA))
			}
			lost = [2]uint64{tp.nftCounter(tp.B, "loss"), tp.nftCounter(tp.A, "loss")}
			t.Logf("A sent %d outer packets; B counted %d, %d were dropped on the way (nftables loss %d, outage %d, full raw sockets %d)", sentA, gotB, dropB, lost[0], tp.nftCounter(tp.B, "outage"), tp.rawDrops(tp.B))
			t.Logf("B sent %d outer packets; A counted %d, %d were dropped on the way (nftables loss %d, outage %d, full raw sockets %d)", sentB, gotA, dropA, lost[1], tp.nftCounter(tp.A, "outage"), tp.rawDrops(tp.A))
			break
		}
		if try == 20 {
			t.Errorf("packets unaccounted for: A sent %d, B counted %d + dropped %d (%+d); B sent %d, A counted %d + dropped %d (%+d)",
				sentA, gotB, dropB, int64(sentA)-int64(gotB+dropB), sentB, gotA, dropA, int64(sentB)-int64(gotA+dropA))
			break
		}
		sleep(30)
	}
	if lost[0] == 0 || lost[1] == 0 {
		t.Errorf("the loss rules dropped %v packets: the soak ran without loss", lost)
	}

	va1, vb1 := tp.vitals(tp.A, maddr), tp.vitals(tp.B, maddr)
	t.Logf("soak %v: %d tunnel changes, %d reloads, %d keepalive outages", dur, changes, reloads, outages)
	t.Logf("daemon A after warm-up: %v; at the end: %v", va0, va1)
	t.Logf("daemon B after warm-up: %v; at the end: %v", vb0, vb1)
	for _, v := range []struct {
		name       string
		start, end vitals
	}{{"A", va0, va1}, {"B", vb0, vb1}} {
		// Flat: no goroutine per packet, change or reload, and no memory
		// growing with the traffic (GC leaves room to breathe).
		if v.end.goroutines > v.start.goroutines+4 {
			t.Errorf("daemon %s: goroutines grew from %.0f to %.0f", v.name, v.start.goroutines, v.end.goroutines)
		}
		if v.end.heap > 1.5*v.start.heap+8<<20 {
			t.Errorf("daemon %s: heap in use grew from %.1f to %.1f MiB", v.name, v.start.heap/(1<<20), v.end.heap/(1<<20))
		}
		if v.end.rss > 1.5*v.start.rss+16<<20 {
			t.Errorf("daemon %s: resident memory grew from %.1f to %.1f MiB", v.name, v.start.rss/(1<<20), v.end.rss/(1<<20))
		}
	}
	// Both still serve: commands, and traffic through every tunnel once
	// the loss is lifted.
	for _, ns := range []string{tp.A, tp.B} {
		tp.Sh(ns, "nft", "delete", "table", "inet", "soak")
	}
	for i, dev := range []string{"ka", "s1", "s2", "s3"} {
		dst := fmt.Sprintf("203.0.113.%d", i+1)
		out, err := tp.Exec(tp.A, "ping", "-c", "20", "-i", "0.02", "-W", "2", dst)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			tp.soakDiagnose(dev, da, db)
			t.Fatalf("ping %s through %s lost packets (%v):\n%s", dst, dev, err, out)
		}
	}
}

// soakDiagnose logs, when a final ping failed, what each side thinks of
// tunnel dev: its status and counters, the device's carrier, the route the
// kernel picks, and what the daemon logged about its line protocol.
func (tp *Topology) soakDiagnose(dev string, da, db *Proc) {
	tp.T.Helper()
	for _, side := range []struct {
		ns   string
		d    *Proc
		peer string
	}{{tp.A, da, "203.0.113.1"}, {tp.B, db, "198.51.100.1"}} {
		show := tp.G(side.ns, "-s", "tunnel", "show", dev)
		link, _ := tp.Exec(side.ns, "ip", "-s", "-o", "link", "show", "dev", dev)
		route, _ := tp.Exec(side.ns, "ip", "route", "get", side.peer)
		var events []string
		for _, l := range strings.Split(side.d.Log(), "\n") {
			if strings.Contains(l, "tunnel="+dev) || strings.Contains(l, "reload") {
				events = append(events, l)
			}
		}
		tp.T.Logf("%s: tunnel show -s %s:\n%s\nlink: %s\nroute to %s: %s\ndaemon log about %s:\n%s",
			side.ns, dev, show.stdout+show.stderr, link, side.peer, route, dev, strings.Join(events, "\n"))
	}
}
