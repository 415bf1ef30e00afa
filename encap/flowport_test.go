package encap_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
)

// tcp4 is an IPv4/TCP header from 198.51.100.1:sport to 203.0.113.1:80.
func tcp4(sport uint16, frag uint16) []byte {
	p := make([]byte, 40)
	p[0], p[9] = 0x45, header.ProtoTCP
	binary.BigEndian.PutUint16(p[2:], 40)
	binary.BigEndian.PutUint16(p[6:], frag)
	copy(p[12:], []byte{198, 51, 100, 1, 203, 0, 113, 1})
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], 80)
	return p
}

// TestFlowPort: a flow keeps its port (whatever else its packets carry),
// flows spread over the dynamic range, fragments past the first (which
// carry no ports) hash by addresses alone.
func TestFlowPort(t *testing.T) {
	a := tcp4(40000, 0)
	b := append(tcp4(40000, 0), "more payload"...)
	b[8] = 3 // another TTL
	if encap.FlowPort(a, true) != encap.FlowPort(b, true) {
		t.Errorf("two packets of one flow got ports %d and %d", encap.FlowPort(a, true), encap.FlowPort(b, true))
	}
	seen := map[uint16]bool{}
	for sport := range uint16(1000) {
		p := encap.FlowPort(tcp4(30000+sport, 0), true)
		if p < 49152 {
			t.Fatalf("port %d outside 49152-65535", p)
		}
		seen[p] = true
	}
	if len(seen) < 950 {
		t.Errorf("1000 flows share %d ports", len(seen))
	}
	if f1, f2 := encap.FlowPort(tcp4(1, 0x0010), true), encap.FlowPort(tcp4(2, 0x0010), true); f1 != f2 {
		t.Errorf("later fragments of one packet hash apart: %d, %d", f1, f2)
	}
}

// TestFlowPortFrame: an Ethernet frame (gretap inside UDP) takes the port
// of the IP flow it carries, behind a VLAN tag too, so a bridged LAN's
// flows spread as a routed tunnel's do; a frame carrying no IP (ARP)
// hashes its Ethernet header.
func TestFlowPortFrame(t *testing.T) {
	frame := func(ip []byte, tagged bool) []byte {
		f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
		if tagged {
			f = append(f, 0x81, 0x00, 0, 42)
		}
		return append(append(f, 0x08, 0x00), ip...)
	}
	for _, sport := range []uint16{40000, 40001} {
		want := encap.FlowPort(tcp4(sport, 0), true)
		if got := encap.FlowPort(frame(tcp4(sport, 0), false), false); got != want {
			t.Errorf("frame of flow %d: port %d, want the flow's %d", sport, got, want)
		}
		if got := encap.FlowPort(frame(tcp4(sport, 0), true), false); got != want {
			t.Errorf("tagged frame of flow %d: port %d, want the flow's %d", sport, got, want)
		}
	}
	arp := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1}
	if p := encap.FlowPort(arp, false); p < 49152 || p != encap.FlowPort(append(arp, 9), false) {
		t.Errorf("ARP frame: port %d", p)
	}
}

// TestEncapFlowPort: with no source port configured, each packet's UDP
// source port is its flow's; a configured one is kept.
func TestEncapFlowPort(t *testing.T) {
	auto, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, UDP: true, DstPort: 4754})
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := encap.New(encap.Config{Mode: encap.ModeGRE, Local: local, Remote: remote, UDP: true, SrcPort: 7, DstPort: 4754})
	if err != nil {
		t.Fatal(err)
	}
	for _, sport := range []uint16{1, 2, 3} {
		in := tcp4(sport, 0)
		out, err := auto.Encap(append(make([]byte, encap.HeadroomMax), in...), encap.HeadroomMax)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := header.UDP(out[20:]).SrcPort(), encap.FlowPort(in, true); got != want {
			t.Errorf("auto: source port %d, want the flow's %d", got, want)
		}
		out, _ = fixed.Encap(append(make([]byte, encap.HeadroomMax), in...), encap.HeadroomMax)
		if got := header.UDP(out[20:]).SrcPort(); got != 7 {
			t.Errorf("fixed: source port %d, want 7", got)
		}
	}
}

// TestIPIPInUDPRefusesIPv6: IPIP inside UDP carries IPv4 only, as IPIP.
func TestIPIPInUDPRefusesIPv6(t *testing.T) {
	e, err := encap.New(encap.Config{Mode: encap.ModeIPIP, Local: local, Remote: remote, UDP: true, DstPort: 5555})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encap(append(make([]byte, encap.HeadroomMax), in6...), encap.HeadroomMax); !errors.Is(err, encap.ErrIPv6OverIPIP) {
		t.Errorf("IPv6 into IPIP inside UDP: %v", err)
	}
}
