package capture

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/internal/testpkt"
)

// grePacket is testpkt.In4 in GRE with key 1, 192.0.2.1 -> 192.0.2.2.
func grePacket(t *testing.T) []byte {
	t.Helper()
	e, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"), TTL: 64, HasKey: true, Key: 1})
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, encap.Headroom), testpkt.In4...)
	out, err := e.Encap(buf, encap.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRoundTrip writes packets with directions and drop reasons, reads
// them back, and checks that gopacket's pcapng reader sees the same
// packets (so Wireshark and tcpdump will).
func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 123456789, time.UTC)
	gre := grePacket(t)
	want := []Packet{
		{Time: at, Out: true, Len: len(gre), Data: gre},
		{Time: at.Add(time.Millisecond), Out: false, Len: len(gre), Data: gre, Drop: "key-mismatch"},
		{Time: at.Add(2 * time.Millisecond), Out: false, Len: 3000, Data: testpkt.In4[:27]}, // truncated, odd length
		{Time: at.Add(3 * time.Millisecond), Out: true, Len: len(testpkt.In6), Data: testpkt.In6, Drop: "too-big"},
	}
	var file bytes.Buffer
	w, err := NewWriter(&file, "netb", "gretun tunnel netb, outer packets", false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if err := w.WritePacket(&want[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteStats(4, 17, at); err != nil {
		t.Fatal(err)
	}

	var tee bytes.Buffer
	r, err := NewReader(bytes.NewReader(file.Bytes()), &tee)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Time = got[i].Time.UTC()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packets read back (-want +got):\n%s", diff)
	}
	if !r.HasStats || r.Captured != 4 || r.Lost != 17 {
		t.Errorf("statistics: %v captured %d lost %d, want 4 and 17", r.HasStats, r.Captured, r.Lost)
	}
	if !bytes.Equal(tee.Bytes(), file.Bytes()) {
		t.Error("the tee did not get the stream block for block")
	}

	ng, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if ng.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP", ng.LinkType())
	}
	for i := range want {
		data, ci, err := ng.ReadPacketData()
		if err != nil {
			t.Fatalf("gopacket, packet %d: %v", i, err)
		}
		if !bytes.Equal(data, want[i].Data) || ci.Length != want[i].Len || !ci.Timestamp.Equal(want[i].Time) {
			t.Errorf("gopacket, packet %d: %d bytes of %d at %v, want %d of %d at %v", i, len(data), ci.Length, ci.Timestamp, len(want[i].Data), want[i].Len, want[i].Time)
		}
	}
	if _, _, err := ng.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Errorf("gopacket after the last packet: %v, want EOF", err)
	}
}

// TestReaderCut: a stream cut inside a block is an error, not a packet,
// and the tee holds whole blocks only.
func TestReaderCut(t *testing.T) {
	var file bytes.Buffer
	w, _ := NewWriter(&file, "x", "", false)
	w.WritePacket(&Packet{Time: time.Now(), Data: grePacket(t), Len: 50})
	w.Flush()
	whole := file.Len()
	w.WritePacket(&Packet{Time: time.Now(), Data: grePacket(t), Len: 50})
	w.Flush()
	var tee bytes.Buffer
	r, err := NewReader(bytes.NewReader(file.Bytes()[:file.Len()-5]), &tee)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("cut block: %v, want an error", err)
	}
	if tee.Len() != whole {
		t.Errorf("tee has %d bytes, want the %d of whole blocks", tee.Len(), whole)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 64)} {
		if _, err := NewReader(bytes.NewReader(bad), nil); err == nil {
			t.Errorf("NewReader(%x) accepted garbage", bad)
		}
	}
}

func TestLine(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 1, 123456000, time.UTC)
	gre := grePacket(t)
	for _, c := range []struct {
		p    Packet
		want string
	}{
		{Packet{Time: at, Out: true, Len: len(gre), Data: gre},
			"12:00:01.123456 out IP 192.0.2.1 > 192.0.2.2: GRE key 1: IP 198.51.100.1 > 203.0.113.1: ICMP EchoRequest id 0 seq 0, length 56"},
		{Packet{Time: at, Len: len(gre), Data: gre, Drop: "key-mismatch"},
			"[dropped: key-mismatch]"},
		{Packet{Time: at, Len: 3, Data: []byte{1, 2, 3}}, "in  "},
	} {
		if got := Line(&c.p); !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
			t.Errorf("Line = %q, want it to contain %q", got, c.want)
		}
	}
}

// TestEthernet: the inner packets of a gretap tunnel are Ethernet frames:
// the file's interface says LINKTYPE_ETHERNET, gopacket reads it back and
// decodes each packet as Ethernet down to the ARP it carries, and gretun's
// own reader and its text line do the same.
func TestEthernet(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 1, 0, time.UTC)
	var file bytes.Buffer
	w, err := NewWriter(&file, "gtap", "gretun tunnel gtap, inner packets", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(&Packet{Time: at, Out: true, Len: len(testpkt.Frame), Data: testpkt.Frame}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStats(1, 0, at); err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if ng.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", ng.LinkType())
	}
	data, _, err := ng.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(data, ng.LinkType(), gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if eth == nil || eth.EthernetType != layers.EthernetTypeARP || arp == nil || pkt.ErrorLayer() != nil {
		t.Errorf("gopacket decodes %v", pkt)
	}

	r, err := NewReader(bytes.NewReader(file.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadAll()
	if err != nil || len(got) != 1 || !got[0].Ethernet {
		t.Fatalf("read back %+v, %v: want one Ethernet frame", got, err)
	}
	if line := Line(&got[0]); !strings.Contains(line, "out ether ") || !strings.Contains(line, ": ARP who-has ") {
		t.Errorf("Line = %q, want the Ethernet header and the ARP request", line)
	}
}
