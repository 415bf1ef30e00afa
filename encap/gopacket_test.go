package encap_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/encap"
)

// randomInner returns a random but well-formed IPv4 or IPv6 packet.
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
	p[6] &= 0x40 // DF or nothing, offset 0
	p[7] = 0
	fixIPv4Checksum(p)
	return p
}

// model says, independently of encap's code, what the outer header of
// the next packet must hold.
type model struct {
	tos, ttl uint8
	flags    layers.IPv4Flag
	proto    layers.EthernetType
}

func expect(cfg encap.Config, inner []byte) model {
	var m model
	var innerTOS, innerTTL uint8
	innerDF := false
	if inner[0]>>4 == 4 {
		innerTOS, innerTTL, innerDF = inner[1], inner[8], inner[6]&0x40 != 0
		m.proto = layers.EthernetTypeIPv4
	} else {
		innerTOS, innerTTL = inner[0]<<4|inner[1]>>4, inner[7]
		m.proto = layers.EthernetTypeIPv6
	}
	m.tos = cfg.TOS &^ 3
	if cfg.TOSInherit {
		m.tos = innerTOS &^ 3
	}
	m.tos |= innerTOS & 3
	m.ttl = cfg.TTL
	if m.ttl == 0 {
		m.ttl = innerTTL
	}
	if cfg.DF == encap.DFSet || cfg.DF == encap.DFInherit && innerDF {
		m.flags = layers.IPv4DontFragment
	}
	return m
}

// allConfigs is every combination of mode (ipip, sit, gre), GRE option,
// TTL, TOS and DF.
func allConfigs() []encap.Config {
	var cs []encap.Config
	for _, mode := range []encap.Mode{encap.ModeIPIP, encap.ModeIP6, encap.ModeGRE} {
		for opts := 0; opts < 8; opts++ {
			if mode != encap.ModeGRE && opts != 0 {
				continue
			}
			for _, ttl := range []uint8{0, 1, 255} {
				for _, tos := range []struct {
					v       uint8
					inherit bool
				}{{0, false}, {0x2b, false}, {0, true}} {
					for _, df := range []encap.DFPolicy{encap.DFInherit, encap.DFSet, encap.DFClear} {
						cs = append(cs, encap.Config{
							Mode: mode, Local: local, Remote: remote,
							TTL: ttl, TOS: tos.v, TOSInherit: tos.inherit, DF: df,
							HasKey: opts&1 != 0, Key: 0xdeadbeef,
							Checksum: opts&2 != 0, Sequence: opts&4 != 0,
						})
					}
				}
			}
		}
	}
	return cs
}

// TestGopacketDecodesEncap decodes Encap's output with gopacket's IPv4 and
// GRE layers, compares every field with what the configuration says, and
// verifies both checksums with a plain RFC 1071 sum. It then has gopacket
// serialise the same fields with ComputeChecksums and asks for identical
// bytes.
func TestGopacketDecodesEncap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, cfg := range allConfigs() {
		t.Run(fmt.Sprintf("%v-key%v-csum%v-seq%v-ttl%d-tos%#x-inh%v-df%d", cfg.Mode, cfg.HasKey, cfg.Checksum, cfg.Sequence, cfg.TTL, cfg.TOS, cfg.TOSInherit, cfg.DF), func(t *testing.T) {
			e, err := encap.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 6; i++ {
				// IPv6 only in sit, both versions in GRE.
				inner := randomInner(rng, cfg.Mode == encap.ModeIP6 || cfg.Mode == encap.ModeGRE && i%2 == 1)
				buf := append(make([]byte, encap.Headroom), inner...)
				out, err := e.Encap(buf, encap.Headroom)
				if err != nil {
					t.Fatal(err)
				}
				m := expect(cfg, inner)
				checkWithGopacket(t, cfg, out, inner, m, uint16(i+1), uint32(i)) // IDs start at 1
			}
		})
	}
}

func checkWithGopacket(t *testing.T, cfg encap.Config, out, inner []byte, m model, id uint16, seq uint32) {
	t.Helper()
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(out, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("gopacket IPv4: %v", err)
	}
	if got := rfc1071(out[:ip.IHL*4]); got != 0 {
		t.Errorf("outer IPv4 header checksum %#04x does not verify", ip.Checksum)
	}
	wantIP := layers.IPv4{
		Version: 4, IHL: 5, TOS: m.tos, Length: uint16(len(out)), Id: id,
		Flags: m.flags, FragOffset: 0, TTL: m.ttl, Protocol: layers.IPProtocol(cfg.Mode),
		Checksum: ip.Checksum, // verified above
		SrcIP:    net.IP(local.AsSlice()), DstIP: net.IP(remote.AsSlice()),
	}
	opt := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.Last().String()
		return s == ".BaseLayer" || s == ".Options" || s == ".Padding"
	}, cmp.Ignore())
	if diff := cmp.Diff(wantIP, ip, opt); diff != "" {
		t.Errorf("outer IPv4 (-want +got):\n%s", diff)
	}
	layersOut := []gopacket.SerializableLayer{&wantIP}
	if cfg.Mode != encap.ModeGRE {
		if !bytes.Equal(ip.Payload, inner) {
			t.Errorf("IP in IP payload is not the inner packet")
		}
	} else {
		var g layers.GRE
		if err := g.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("gopacket GRE: %v", err)
		}
		if cfg.Checksum {
			if got := rfc1071(ip.Payload); got != 0 {
				t.Errorf("GRE checksum %#04x does not verify", g.Checksum)
			}
		}
		wantGRE := layers.GRE{
			ChecksumPresent: cfg.Checksum, KeyPresent: cfg.HasKey, SeqPresent: cfg.Sequence,
			Version: 0, Protocol: m.proto, Checksum: g.Checksum, // verified above
		}
		if cfg.HasKey {
			wantGRE.Key = cfg.Key
		}
		if cfg.Sequence {
			wantGRE.Seq = seq
		}
		if !cfg.Checksum {
			wantGRE.Checksum = 0
		}
		if diff := cmp.Diff(wantGRE, g, opt); diff != "" {
			t.Errorf("GRE (-want +got):\n%s", diff)
		}
		if !bytes.Equal(g.Payload, inner) {
			t.Errorf("GRE payload is not the inner packet")
		}
		layersOut = append(layersOut, &wantGRE)
	}
	// The same fields through gopacket's serialiser must give the same bytes.
	sb := gopacket.NewSerializeBuffer()
	layersOut = append(layersOut, gopacket.Payload(inner))
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, layersOut...); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sb.Bytes(), out); diff != "" {
		t.Errorf("gopacket serialises the same fields differently (-gopacket +encap):\n%s", diff)
	}
}
