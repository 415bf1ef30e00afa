package capture

import (
	"fmt"
	"net"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Line formats p as one line, like tcpdump: the time, the direction, each
// IP header (and Ethernet header, of a gretap tunnel's frames) with what it
// carries down to the innermost transport, the length, and the drop
// reason of a dropped packet.
//
//	12:00:01.000123 out IP 192.0.2.1 > 192.0.2.2: GRE key 1: IP 198.51.100.1 > 203.0.113.1: ICMP EchoRequest id 7 seq 1, length 108
func Line(p *Packet) string {
	var b strings.Builder
	dir := "in "
	if p.Out {
		dir = "out"
	}
	fmt.Fprintf(&b, "%s %s ", p.Time.Format("15:04:05.000000"), dir)
	first := layers.LayerTypeIPv4
	switch {
	case p.Ethernet:
		first = layers.LayerTypeEthernet
	case len(p.Data) > 0 && p.Data[0]>>4 == 6:
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(p.Data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var parts []string
	for _, l := range pkt.Layers() {
		if s := describe(l); s != "" {
			parts = append(parts, s)
		}
		if g, ok := l.(*layers.GRE); ok && g.Protocol == 0 {
			break // a keepalive's payload is no packet
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "not IP")
	}
	b.WriteString(strings.Join(parts, ": "))
	fmt.Fprintf(&b, ", length %d", p.Len)
	if p.Drop != "" {
		fmt.Fprintf(&b, " [dropped: %s]", p.Drop)
	}
	return b.String()
}

// describe is one layer's part of the line, "" for layers not shown.
func describe(l gopacket.Layer) string {
	switch l := l.(type) {
	case *layers.Ethernet:
		return fmt.Sprintf("ether %s > %s", l.SrcMAC, l.DstMAC)
	case *layers.Dot1Q:
		return fmt.Sprintf("vlan %d", l.VLANIdentifier)
	case *layers.ARP:
		if l.Operation == layers.ARPReply {
			return fmt.Sprintf("ARP reply %s is-at %s", net.IP(l.SourceProtAddress), net.HardwareAddr(l.SourceHwAddress))
		}
		return fmt.Sprintf("ARP who-has %s tell %s", net.IP(l.DstProtAddress), net.IP(l.SourceProtAddress))
	case *layers.IPv4:
		return fmt.Sprintf("IP %s > %s", l.SrcIP, l.DstIP) + ipProto(l.Protocol)
	case *layers.IPv6:
		return fmt.Sprintf("IP6 %s > %s", l.SrcIP, l.DstIP) + ipProto(l.NextHeader)
	case *layers.GRE:
		s := "GRE"
		if l.KeyPresent {
			s += fmt.Sprintf(" key %d", l.Key)
		}
		if l.SeqPresent {
			s += fmt.Sprintf(" seq %d", l.Seq)
		}
		if l.ChecksumPresent {
			s += " csum"
		}
		if l.Protocol == 0 {
			s += " keepalive"
		}
		return s
	case *layers.ICMPv4:
		return fmt.Sprintf("ICMP %s id %d seq %d", l.TypeCode, l.Id, l.Seq)
	case *layers.ICMPv6:
		return fmt.Sprintf("ICMP6 %s", l.TypeCode)
	case *layers.TCP:
		return fmt.Sprintf("TCP %d > %d seq %d", l.SrcPort, l.DstPort, l.Seq)
	case *layers.UDP:
		return fmt.Sprintf("UDP %d > %d", l.SrcPort, l.DstPort)
	case *gopacket.DecodeFailure:
		return "undecodable"
	}
	return ""
}

// ipProto names a protocol gopacket does not decode further.
func ipProto(p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolIPv4, layers.IPProtocolGRE, layers.IPProtocolIPv6, layers.IPProtocolTCP,
		layers.IPProtocolUDP, layers.IPProtocolICMPv4, layers.IPProtocolICMPv6:
		return ""
	}
	return " proto " + p.String()
}
