package decap_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/decap"
)

// TestParseGopacketPackets has gopacket, an independent implementation,
// serialise outer packets (ComputeChecksums, FixLengths) for every
// combination of mode (IPv4 in IPv4, IPv6 in IPv4 as sit sends it, GRE)
// and GRE flags, and checks what Parse makes of them.
func TestParseGopacketPackets(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, mode := range []layers.IPProtocol{layers.IPProtocolIPv4, layers.IPProtocolIPv6, layers.IPProtocolGRE} {
		for flags := 0; flags < 8; flags++ {
			if mode != layers.IPProtocolGRE && flags != 0 {
				continue
			}
			for _, v6 := range []bool{false, true} {
				// IP in IP carries its one version: 4 in protocol 4, 6 in 41.
				if mode == layers.IPProtocolIPv4 && v6 || mode == layers.IPProtocolIPv6 && !v6 {
					continue
				}
				name := fmt.Sprintf("%v-csum%v-key%v-seq%v-ipv6%v", mode, flags&1 != 0, flags&2 != 0, flags&4 != 0, v6)
				t.Run(name, func(t *testing.T) {
					for i := 0; i < 20; i++ {
						inner := randomInner(rng, v6)
						ip := &layers.IPv4{
							Version: 4, TOS: byte(rng.Uint32()), Id: uint16(rng.Uint32()),
							Flags: layers.IPv4DontFragment, TTL: 1 + byte(rng.IntN(255)), Protocol: mode,
							SrcIP: net.IP(remoteIP[:]), DstIP: net.IP(localIP[:]),
						}
						gre := &layers.GRE{
							ChecksumPresent: flags&1 != 0, KeyPresent: flags&2 != 0, SeqPresent: flags&4 != 0,
							Key: rng.Uint32(), Seq: rng.Uint32(), Protocol: layers.EthernetTypeIPv4,
						}
						if v6 {
							gre.Protocol = layers.EthernetTypeIPv6
						}
						ls := []gopacket.SerializableLayer{ip}
						if mode == layers.IPProtocolGRE {
							ls = append(ls, gre)
						}
						ls = append(ls, gopacket.Payload(inner))
						sb := gopacket.NewSerializeBuffer()
						if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
							t.Fatal(err)
						}
						pkt := sb.Bytes()

						var p decap.Packet
						if r := decap.Parse(pkt, &p); r != decap.OK {
							t.Fatalf("Parse dropped gopacket's packet: %v\n% x", r, pkt)
						}
						hl := 20
						want := decap.Packet{
							Proto: uint8(mode), Src: remoteAddr, Dst: localAddr, TOS: ip.TOS,
							Type: 0x0800, Kind: decap.Data,
						}
						if mode == layers.IPProtocolIPv6 {
							want.Type = 0x86dd
						}
						if mode == layers.IPProtocolGRE {
							want.Type = uint16(gre.Protocol)
							hl += 4
							if gre.ChecksumPresent {
								want.GREFlags |= 0x8000
								hl += 4
							}
							if gre.KeyPresent {
								want.GREFlags |= 0x2000
								want.Key = gre.Key
								hl += 4
							}
							if gre.SeqPresent {
								want.GREFlags |= 0x1000
								want.Seq = gre.Seq
								hl += 4
							}
						}
						want.Start, want.End = hl, hl+len(inner)
						if diff := cmp.Diff(want, p, addrCmp); diff != "" {
							t.Fatalf("Packet (-want +got):\n%s", diff)
						}
						if !bytes.Equal(pkt[p.Start:p.End], inner) {
							t.Fatal("inner range is not the inner packet")
						}
						if gre.ChecksumPresent && mode == layers.IPProtocolGRE {
							// gopacket's checksum, damaged, must be refused.
							pkt[24] ^= 0x10
							if r := decap.Parse(pkt, &p); r != decap.GREChecksum {
								t.Fatalf("damaged gopacket checksum: %v", r)
							}
						}
					}
				})
			}
		}
	}
}

// randomInner returns a random but well-formed IPv4 or IPv6 packet with a
// non-zero TTL.
func randomInner(rng *rand.Rand, v6 bool) []byte {
	if v6 {
		n := 40 + rng.IntN(1400)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		p[0] = 0x60 | p[0]&0x0f
		p[4], p[5] = byte((n-40)>>8), byte(n-40)
		return p
	}
	n := 20 + rng.IntN(1400)
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	p[0] = 0x45
	p[2], p[3] = byte(n>>8), byte(n)
	p[9] = 17 // UDP, so that no random packet is a keepalive probe
	if p[8] == 0 {
		p[8] = 1
	}
	return fixIP(p)
}

// TestParseGopacketEthernet has gopacket build gretap packets the other way
// round: IPv4, GRE 0x6558 with every flag combination, then an Ethernet
// frame it lays out itself (ARP, and IPv4 in an 802.1Q tag), and checks
// that Parse hands back exactly gopacket's frame, and that gopacket reads
// the frame Parse found as what it built.
func TestParseGopacketEthernet(t *testing.T) {
	src, dst := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	arp := []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: src, SourceProtAddress: []byte{198, 51, 100, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{198, 51, 100, 2}},
	}
	tagged := []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4},
		gopacket.Payload(in4),
	}
	for flags := 0; flags < 8; flags++ {
		for _, frame := range [][]gopacket.SerializableLayer{arp, tagged} {
			gre := &layers.GRE{
				ChecksumPresent: flags&1 != 0, KeyPresent: flags&2 != 0, SeqPresent: flags&4 != 0,
				Key: 7, Seq: 9, Protocol: layers.EthernetTypeTransparentEthernetBridging,
			}
			ls := append([]gopacket.SerializableLayer{
				&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: net.IP(remoteIP[:]), DstIP: net.IP(localIP[:])},
				gre,
			}, frame...)
			opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, opts, ls...); err != nil {
				t.Fatal(err)
			}
			fb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(fb, opts, frame...); err != nil {
				t.Fatal(err)
			}
			pkt := sb.Bytes()
			var p decap.Packet
			if r := decap.Parse(pkt, &p); r != decap.OK || p.Type != 0x6558 || p.Kind != decap.Data || p.HasKey() != gre.KeyPresent {
				t.Fatalf("flags %d: %v %+v", flags, r, p)
			}
			if !bytes.Equal(pkt[p.Start:p.End], fb.Bytes()) {
				t.Fatalf("flags %d: frame\n got % x\nwant % x", flags, pkt[p.Start:p.End], fb.Bytes())
			}
			back := gopacket.NewPacket(pkt[p.Start:p.End], layers.LayerTypeEthernet, gopacket.Default)
			if el := back.ErrorLayer(); el != nil {
				t.Fatalf("gopacket cannot read the frame Parse found: %v", el.Error())
			}
			if eth := back.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.SrcMAC, src) {
				t.Errorf("source MAC %v", eth.SrcMAC)
			}
		}
	}
}
