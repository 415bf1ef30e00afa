package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gretun/gretun/status"
)

// hubStatus reads the multipoint tunnel's neighbours from `gretun -s -j
// tunnel show`.
func hubStatus(t *testing.T, e *env) status.Tunnel {
	t.Helper()
	out, err := e.n.Exec(e.ns, e.bin, "-s", "-j", "tunnel", "show", tunName)
	if err != nil {
		t.Fatalf("tunnel show: %v: %s", err, out)
	}
	var doc struct{ Tunnels []status.Tunnel }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Tunnels) != 1 {
		t.Fatalf("tunnel show -j: %v: %s", err, out)
	}
	return doc.Tunnels[0]
}

// kernelSpoke: gretun is a multipoint hub (no remote, the kernel's inner
// address a neighbour) and the kernel an ordinary spoke, `ip tunnel add …
// mode gre remote HUB`. The standard traffic check passes through the
// hub's neighbour; the hub counts it per neighbour; with the neighbour
// gone, the kernel's packets are dropped as no-neighbour and nothing is
// sent to it.
func kernelSpoke(t *testing.T, e *env, c tcase) {
	e.stopGretun(t, e.gretun)
	path := filepath.Join(e.tmp, "hub.conf")
	conf := fmt.Sprintf("%s mode gre local %s %s\nneigh add %s lladdr %s dev %s\n",
		tunName, hostUnder, strings.Join(c.gretun.words(), " "), guestIn4, guestUnd, tunName)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	e.gretun = startGretunCmd(t, e, false, "daemon", "-c", path)
	traffic(t, e, c)
	st := hubStatus(t, e)
	if len(st.Neighbours) != 1 || st.Neighbours[0].LLAddr.String() != guestUnd ||
		st.Neighbours[0].Stats.RxPackets == 0 || st.Neighbours[0].Stats.TxPackets == 0 {
		t.Errorf("hub neighbours: %+v", st.Neighbours)
	}
	if out, err := e.n.Exec(e.ns, e.bin, "neigh", "del", guestIn4, "dev", tunName); err != nil {
		t.Fatalf("neigh del: %v: %s", err, out)
	}
	r0, _ := gretunCounters(t, e, tunName)
	if _, r, _ := guestPing(t, e, "-c 2 -i 0.2 -W 1 "+hostIn4); r != 0 {
		t.Errorf("the kernel got %d answers from a hub that no longer has it as a neighbour", r)
	}
	if _, r, _ := hostPing(t, e, "-c", "1", "-W", "1", guestIn4); r != 0 {
		t.Error("the hub reached an address it has no neighbour for")
	}
	d := sub(func() status.Stats { r, _ := gretunCounters(t, e, tunName); return r }(), r0)
	if d.Drops["no-neighbour"] < 2 || d.TxPackets != 0 {
		t.Errorf("without the neighbour: drops %v, sent %d; want the kernel's pings dropped as no-neighbour, nothing sent", d.Drops, d.TxPackets)
	}
}

// kernelHub: the kernel is the multipoint hub (`ip tunnel add … mode gre
// local X key K` without remote, gretun's inner address a permanent
// neighbour with gretun's underlay address as lladdr, as opennhrp sets
// it) and gretun an ordinary spoke. The guest's full iproute2 has `ip
// neigh` (busybox's has no such command).
func kernelHub(t *testing.T, e *env, c tcase) {
	if _, err := e.g.Run("ip tunnel del " + tunName); err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf("ip tunnel add %s mode gre local %s %s && echo 1 > /proc/sys/net/ipv6/conf/%s/disable_ipv6 && ip addr add %s/30 dev %s && ip link set %s up",
		tunName, guestUnd, strings.Join(c.guest.words(), " "), tunName, guestIn4, tunName, tunName)
	if _, err := e.g.Run(cmd); err != nil {
		t.Fatalf("kernel multipoint tunnel: %v", err)
	}
	if out, err := e.g.Run(fmt.Sprintf("ip neigh replace %s lladdr %s dev %s nud permanent", hostIn4, hostUnder, tunName)); err != nil {
		t.Fatalf("kernel neighbour: %v %s", err, out)
	}
	traffic(t, e, c)
}

// ip6KernelSpoke is kernelSpoke over the IPv6 underlay: gretun a
// multipoint ip6gre hub (as the kernel's NBMA ip6gre), the kernel's
// `ip -6 tunnel add … mode ip6gre remote HUB` (or `ip link add … type
// ip6gre … encap fou`) a spoke. The standard IPv6-underlay check passes
// through the hub's neighbour for both inner families, and the hub counts
// it per neighbour; with both of the kernel's entries gone, its packets of
// either family are dropped as no-neighbour and nothing is sent to it.
func ip6KernelSpoke(t *testing.T, e *env, c ip6case) {
	e.stopGretun(t, e.gretun)
	path := filepath.Join(e.tmp, "hub.conf")
	conf := fmt.Sprintf("%s mode %s local %s %s\nneigh add %s lladdr %s dev %s\nneigh add %s lladdr %s dev %s\n",
		tunName, c.mode, hostUnder6, strings.Join(c.allWords(), " "), guestIn4, guestUnder6, tunName, guestIn6, guestUnder6, tunName)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	e.gretun = startGretunCmd(t, e, c.v6, "daemon", "-c", path)
	traffic6(t, e, c)
	st := hubStatus(t, e)
	if len(st.Neighbours) != 1 || st.Neighbours[0].LLAddr.String() != guestUnder6 ||
		st.Neighbours[0].Stats.RxPackets == 0 || st.Neighbours[0].Stats.TxPackets == 0 {
		t.Errorf("hub neighbours: %+v", st.Neighbours)
	}
	for _, dst := range []string{guestIn4, guestIn6} {
		if out, err := e.n.Exec(e.ns, e.bin, "neigh", "del", dst, "dev", tunName); err != nil {
			t.Fatalf("neigh del %s: %v: %s", dst, err, out)
		}
	}
	if st := hubStatus(t, e); len(st.Neighbours) != 0 {
		t.Errorf("hub neighbours after neigh del: %+v", st.Neighbours)
	}
	r0, _ := gretunCounters(t, e, tunName)
	for _, fam := range []string{"-c 2 -i 0.2 -W 1 " + hostIn4, "-6 -c 2 -i 0.2 -W 1 " + hostIn6} {
		if _, r, _ := guestPing(t, e, fam); r != 0 {
			t.Errorf("ping %s: the kernel got %d answers from a hub that no longer has it as a neighbour", fam, r)
		}
	}
	for _, dst := range []string{guestIn4, guestIn6} {
		if _, r, _ := hostPing(t, e, "-c", "1", "-W", "1", dst); r != 0 {
			t.Errorf("the hub reached %s, which it has no neighbour for", dst)
		}
	}
	r1, _ := gretunCounters(t, e, tunName)
	if d, nn := sub(r1, r0), r1.TxNoNeighbour-r0.TxNoNeighbour; d.Drops["no-neighbour"] < 4 || d.TxPackets != 0 || nn < 2 {
		t.Errorf("without the neighbour: drops %v, sent %d, %d to no neighbour; want the kernel's 4 pings dropped as no-neighbour, nothing sent, the hub's 2 counted",
			d.Drops, d.TxPackets, nn)
	}
}
