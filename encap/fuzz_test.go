package encap_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
)

// FuzzRoundTrip encapsulates an inner packet with a fuzzed tunnel
// configuration, parses the result with decap, and checks that the inner
// bytes, the key, the flags, the sequence number and the ECN bits come back
// as they went in. The inner bytes are fuzzed too, then made into a
// well-formed IPv4 or IPv6 packet (version, length, non-zero TTL). The
// higher bits of mode choose an outer IPv6 header (2), a UDP header (4,
// with its checksum: 8) and the Ethernet protocol type (16), which decap
// classifies and drops.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint32(0), uint8(255), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4...))
	f.Add(uint8(1), uint8(7), uint32(42), uint8(0), uint8(0xb8), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4CE...))
	f.Add(uint8(1), uint8(5), uint32(0xffffffff), uint8(64), uint8(0x2b), uint8(9), uint8(3), uint8(3), append([]byte(nil), in6...))
	f.Add(uint8(0), uint8(0), uint32(0), uint8(1), uint8(0), uint8(1), uint8(2), uint8(2), append([]byte(nil), in6...))
	f.Add(uint8(3), uint8(7), uint32(42), uint8(0), uint8(0x2b), uint8(1), uint8(2), uint8(2), append([]byte(nil), in6...))     // IPv6 outer
	f.Add(uint8(2), uint8(0), uint32(0), uint8(9), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4CE...))       // IPv4 in IPv6
	f.Add(uint8(5), uint8(1), uint32(9999), uint8(64), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4...))     // UDP, no checksum
	f.Add(uint8(15), uint8(5), uint32(1234), uint8(64), uint8(0), uint8(1), uint8(2), uint8(3), append([]byte(nil), in6...))    // IPv6, UDP, checksum
	f.Add(uint8(13), uint8(0), uint32(0xffff), uint8(64), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4...))  // IPv4, UDP, checksum
	f.Add(uint8(17), uint8(1), uint32(42), uint8(0), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4...))       // Ethernet type
	f.Add(uint8(98), uint8(0), uint32(0), uint8(4), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in6...))        // ip6ip6 as Linux sends it
	f.Add(uint8(64), uint8(0x10), uint32(0), uint8(255), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in6...))   // sit as tunnel brokers ask: ttl 255, pmtudisc
	f.Add(uint8(35), uint8(7), uint32(0x12345), uint8(64), uint8(0), uint8(1), uint8(2), uint8(2), append([]byte(nil), in4...)) // ip6gre, encaplimit, flow label
	f.Add(uint8(162), uint8(0), uint32(0), uint8(4), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in4...))       // mode any, IPv4 inside, encaplimit
	f.Add(uint8(162), uint8(0), uint32(0), uint8(4), uint8(0), uint8(1), uint8(2), uint8(1), append([]byte(nil), in6...))       // mode any, IPv6 inside
	f.Fuzz(func(t *testing.T, mode, opts uint8, key uint32, ttl, tos, a, b, seqs uint8, inner []byte) {
		room := encap.Headroom
		if mode&^1 != 0 {
			room = encap.HeadroomMax
		}
		if len(inner) == 0 || len(inner) > 65535-room {
			return
		}
		cfg := encap.Config{
			Mode:   encap.ModeGRE,
			Local:  netip.AddrFrom4([4]byte{192, 0, 2, a}),
			Remote: netip.AddrFrom4([4]byte{192, 0, 2, b}),
			TTL:    ttl, TOS: tos, TOSInherit: opts&8 != 0, DF: encap.DFPolicy(opts >> 4 % 3),
		}
		if a == b {
			cfg.Remote = netip.AddrFrom4([4]byte{192, 0, 2, b + 1})
		}
		if mode&2 != 0 {
			cfg.Local = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: a})
			cfg.Remote = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: 1, 15: b})
		}
		if mode&2 != 0 && mode&32 != 0 && mode&4 == 0 { // as Linux's ip6 tunnels: an encapsulation limit
			cfg.HasEncapLimit, cfg.EncapLimit = true, ttl
			cfg.FlowLabel, cfg.FlowLabelInherit = key&0xfffff, opts&1 != 0
		}
		if mode&1 == 0 {
			cfg.Mode = encap.ModeIPIP
			if mode&64 != 0 {
				cfg.Mode = encap.ModeIP6 // ip6ip6 over IPv6, sit over IPv4
			}
			if mode&2 != 0 && mode&128 != 0 {
				cfg.Mode = encap.ModeIP6Any
			}
		} else {
			cfg.HasKey, cfg.Key = opts&1 != 0, key
			cfg.Checksum = opts&2 != 0
			cfg.Sequence = opts&4 != 0
			if mode&4 != 0 {
				cfg.UDP, cfg.SrcPort, cfg.DstPort, cfg.UDPChecksum = true, uint16(key), header.UDPPortGRE, mode&8 != 0
			}
			if mode&16 != 0 {
				cfg.EtherType = header.EtherTypeTEB
			}
		}
		e, err := encap.New(cfg)
		if err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
		v6 := inner[0]>>4 == 6
		inner = wellFormed(inner, v6)
		teb := cfg.EtherType == header.EtherTypeTEB
		rx := decap.NewReceiver(decap.Policy{Key: cfg.Key, HasKey: cfg.HasKey,
			RequireChecksum: cfg.Checksum, RequireSequence: cfg.Sequence})
		for i := 0; i <= int(seqs%4); i++ {
			buf := append(make([]byte, room), inner...)
			out, err := e.Encap(buf, room)
			if v6 && cfg.Mode == encap.ModeIPIP {
				if !errors.Is(err, encap.ErrIPv6OverIPIP) {
					t.Fatalf("IPv6 over IPIP: %v", err)
				}
				return
			}
			if !v6 && cfg.Mode == encap.ModeIP6 {
				if !errors.Is(err, encap.ErrIPv4OverIP6) {
					t.Fatalf("IPv4 over ip6ip6 or sit: %v", err)
				}
				return
			}
			if l, _, found := header.IPv6EncapLimit(inner); v6 && cfg.Local.Is6() && found && l == 0 {
				if !errors.Is(err, encap.ErrEncapLimit) {
					t.Fatalf("nested packet with limit 0: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Encap: %v", err)
			}
			// decap leaves the outer header checksum to the kernel: check it here.
			if !cfg.Local.Is6() && rfc1071(out[:20]) != 0 {
				t.Fatalf("outer header checksum does not verify")
			}
			var p decap.Packet
			r := parseOuter(t, cfg, inner, out, &p)
			if teb {
				// An opaque frame (gretap): carried whole, as data,
				// with nothing inherited into the outer ECN field.
				if r != decap.OK || rx.Accept(&p) != decap.OK || p.Type != header.EtherTypeTEB || p.Kind != decap.Data ||
					p.Key != cfg.Key&keyMask(cfg) || p.TOS&3 != 0 || !bytes.Equal(out[p.Start:p.End], inner) {
					t.Fatalf("Ethernet payload: %v %+v", r, p)
				}
				continue
			}
			if r != decap.OK {
				t.Fatalf("Parse dropped encap's output: %v", r)
			}
			if r := rx.Accept(&p); r != decap.OK {
				t.Fatalf("Accept dropped packet %d of a matching tunnel: %v", i, r)
			}
			if !bytes.Equal(out[p.Start:p.End], inner) {
				t.Fatalf("inner packet changed on the round trip")
			}
			if p.Src != cfg.Local || p.Dst != cfg.Remote || p.Proto != outerProto(cfg, v6) {
				t.Fatalf("outer addresses or protocol: %+v", p)
			}
			if p.HasKey() != cfg.HasKey || cfg.HasKey && p.Key != cfg.Key {
				t.Fatalf("key: got %v %#x, config %v %#x", p.HasKey(), p.Key, cfg.HasKey, cfg.Key)
			}
			wantFlags := uint16(0)
			if cfg.Checksum {
				wantFlags |= header.GREFlagCsum
			}
			if cfg.HasKey {
				wantFlags |= header.GREFlagKey
			}
			if cfg.Sequence {
				wantFlags |= header.GREFlagSeq
			}
			if p.GREFlags != wantFlags {
				t.Fatalf("GRE flags %#04x, want %#04x", p.GREFlags, wantFlags)
			}
			if cfg.Sequence && p.Seq != uint32(i) {
				t.Fatalf("sequence number %d, want %d", p.Seq, i)
			}
			wantType := uint16(header.EtherTypeIPv4)
			if v6 {
				wantType = header.EtherTypeIPv6
			}
			if p.Type != wantType {
				t.Fatalf("type %#04x, want %#04x", p.Type, wantType)
			}
			innerECN := inner[1] & 3
			if v6 {
				innerECN = inner[1] >> 4 & 3
			}
			if p.TOS&3 != innerECN {
				t.Fatalf("outer ECN %d, inner %d: not copied", p.TOS&3, innerECN)
			}
			// Only a keepalive probe is reflected: inner GRE from the far
			// end's view of us back to it, carrying protocol type 0
			// (decap's own tests check the rest of the GRE header).
			probe := !v6 && cfg.Mode == encap.ModeGRE && inner[9] == header.ProtoGRE && cfg.Local.Is4() &&
				[4]byte(inner[12:16]) == cfg.Remote.As4() && [4]byte(inner[16:20]) == cfg.Local.As4()
			if ihl := int(inner[0]&0x0f) * 4; probe && (len(inner) < ihl+4 || inner[ihl+2] != 0 || inner[ihl+3] != 0) {
				probe = false
			}
			if p.Kind != decap.Data && (p.Kind != decap.Reflect || !probe) {
				t.Fatalf("kind %v, probe %v", p.Kind, probe)
			}
		}
	})
}

// wellFormed turns b into an IPv4 (or IPv6) packet whose header agrees with
// its length, with a non-zero TTL or hop limit.
func wellFormed(b []byte, v6 bool) []byte {
	if v6 {
		if len(b) < 40 {
			b = append(b, make([]byte, 40-len(b))...)
		}
		b[0] = 0x60 | b[0]&0x0f
		b[4], b[5] = byte((len(b)-40)>>8), byte(len(b)-40)
		if b[6] == 0 && len(b) == 40 {
			b[6] = 59 // payload length 0 with a hop-by-hop header would be a jumbogram
		}
		if b[7] == 0 {
			b[7] = 1
		}
		return b
	}
	if len(b) < 20 {
		b = append(b, make([]byte, 20-len(b))...)
	}
	ihl := 5 + int(b[0]&0x0f)%11
	if ihl*4 > len(b) {
		ihl = 5
	}
	b[0] = 0x40 | byte(ihl)
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	if b[8] == 0 {
		b[8] = 1
	}
	fixIPv4Checksum(b)
	return b
}

// parseOuter parses encap's output as the underlay of cfg would deliver
// it: whole over IPv4 (Parse) or IPv6 (Parse6); with UDP, the test plays
// the socket that checks and strips IP and UDP, then calls ParseGRE.
func parseOuter(t *testing.T, cfg encap.Config, inner, out []byte, p *decap.Packet) decap.Reason {
	t.Helper()
	if !cfg.UDP {
		if cfg.Local.Is6() {
			return decap.Parse6(out, p)
		}
		return decap.Parse(out, p)
	}
	*p = decap.Packet{}
	var ipLen int
	var pseudo []byte
	if cfg.Local.Is6() {
		ip := header.IPv6(out)
		if ip.NextHeader() != header.ProtoUDP || ip.PayloadLen() != len(out)-40 {
			t.Fatalf("outer IPv6: next header %d, payload length %d of %d", ip.NextHeader(), ip.PayloadLen(), len(out))
		}
		ipLen, p.Src, p.Dst, p.TOS = 40, ip.SrcAddr(), ip.DstAddr(), ip.TrafficClass()
		pseudo = append(pseudo, out[8:40]...)
		pseudo = append(pseudo, byte((len(out)-40)>>24), byte((len(out)-40)>>16), byte((len(out)-40)>>8), byte(len(out)-40), 0, 0, 0, header.ProtoUDP)
	} else {
		ip := header.IPv4(out)
		if ip.Protocol() != header.ProtoUDP || ip.TotalLen() != len(out) {
			t.Fatalf("outer IPv4: protocol %d, total length %d of %d", ip.Protocol(), ip.TotalLen(), len(out))
		}
		ipLen, p.Src, p.Dst, p.TOS = 20, ip.SrcAddr(), ip.DstAddr(), ip.TOS()
		pseudo = append(pseudo, out[12:20]...)
		pseudo = append(pseudo, 0, header.ProtoUDP, byte((len(out)-20)>>8), byte(len(out)-20))
	}
	u := header.UDP(out[ipLen:])
	sport := cfg.SrcPort
	if sport == 0 { // encap-sport auto: the inner flow's port
		sport = encap.FlowPort(inner, cfg.EtherType != header.EtherTypeTEB)
	}
	if !u.IsValid() || u.Length() != len(u) || u.SrcPort() != sport || u.DstPort() != cfg.DstPort {
		t.Fatalf("UDP header % x for %d bytes", out[ipLen:ipLen+8], len(u))
	}
	switch {
	case !cfg.UDPChecksum && u.Checksum() != 0:
		t.Fatalf("UDP checksum %#04x, want none", u.Checksum())
	case cfg.UDPChecksum && (u.Checksum() == 0 || rfc1071(append(pseudo, u...)) != 0):
		t.Fatalf("UDP checksum %#04x does not verify", u.Checksum())
	}
	return decap.ParseGRE(out, ipLen+header.UDPLen, p)
}

// keyMask is all ones when cfg sends a key, zero otherwise.
func keyMask(cfg encap.Config) uint32 {
	if cfg.HasKey {
		return ^uint32(0)
	}
	return 0
}
