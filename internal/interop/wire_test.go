package interop

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

// wirePacket is one IPv4 packet captured on the underlay (the tap), with
// the GRE and inner headers decoded when the packet holds them.
type wirePacket struct {
	src, dst string
	ttl      int
	df, mf   bool
	fragOff  int  // in bytes
	length   int  // outer total length
	proto    int  // outer protocol: 47 GRE, 4 IPIP, 41 sit, 1 ICMP; inside UDP to a fou port, 47, 4 or 41
	udp      bool // GRE, IPIP or sit inside UDP (encap fou)
	udpCsum  bool // its UDP checksum is not 0

	gre      *greHeader // nil unless an unfragmented GRE packet
	inner    []byte     // inner packet (may be cut short by the capture)
	innerTTL int        // inner IPv4 TTL or IPv6 hop limit; -1 if unknown
	icmpType int        // for outer ICMP: type; -1 otherwise
}

type greHeader struct {
	csum, key, seq bool
	csumOK         bool
	csumUnfilled   bool // checksum field 0: left to a NIC (CHECKSUM_PARTIAL)
	keyVal, seqVal uint32
	proto          uint16
}

// readPcap decodes a tcpdump capture file of an Ethernet interface,
// keeping IPv4 packets. Written out here to keep the test's dependencies
// to the standard library.
func readPcap(path string) ([]wirePacket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var gh [24]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		return nil, fmt.Errorf("pcap %s: short header: %v", path, err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh[:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap %s: bad magic", path)
	}
	if lt := bo.Uint32(gh[20:24]); lt != 1 {
		return nil, fmt.Errorf("pcap %s: link type %d, want Ethernet", path, lt)
	}
	var pkts []wirePacket
	for {
		var rh [16]byte
		if _, err := io.ReadFull(f, rh[:]); err == io.EOF || err == io.ErrUnexpectedEOF {
			return pkts, nil // tcpdump killed mid-write leaves a torn record
		} else if err != nil {
			return nil, err
		}
		n := bo.Uint32(rh[8:12])
		if n > 1<<18 {
			return nil, fmt.Errorf("pcap %s: record of %d bytes", path, n)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(f, frame); err != nil {
			return pkts, nil
		}
		if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
			continue
		}
		if p, ok := decodeIPv4(frame[14:]); ok {
			pkts = append(pkts, p)
		}
	}
}

func decodeIPv4(b []byte) (wirePacket, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return wirePacket{}, false
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < 20 || len(b) < ihl {
		return wirePacket{}, false
	}
	frag := binary.BigEndian.Uint16(b[6:8])
	p := wirePacket{
		src:      net.IP(b[12:16]).String(),
		dst:      net.IP(b[16:20]).String(),
		ttl:      int(b[8]),
		df:       frag&0x4000 != 0,
		mf:       frag&0x2000 != 0,
		fragOff:  int(frag&0x1fff) * 8,
		length:   int(binary.BigEndian.Uint16(b[2:4])),
		proto:    int(b[9]),
		innerTTL: -1,
		icmpType: -1,
	}
	payload := b[ihl:]
	if p.length >= ihl && p.length <= len(b) {
		payload = b[ihl:p.length]
	}
	if p.mf || p.fragOff != 0 {
		return p, true // a fragment: headers beyond the first are not there
	}
	// GRE and IPIP inside UDP, to the ports the matrix uses.
	if fouProto, ok := fouPorts[fouDport(p.proto, payload)]; ok && len(payload) >= 8 {
		p.udp, p.proto = true, fouProto
		p.udpCsum = binary.BigEndian.Uint16(payload[6:8]) != 0
		payload = payload[8:]
	}
	switch p.proto {
	case 1:
		if len(payload) > 0 {
			p.icmpType = int(payload[0])
		}
	case 4, 41:
		p.inner = payload
	case 47:
		g, hlen, ok := decodeGRE(payload)
		if !ok {
			return p, true
		}
		p.gre = g
		p.inner = payload[hlen:]
	}
	if len(p.inner) >= 20 && p.inner[0]>>4 == 4 {
		p.innerTTL = int(p.inner[8])
	} else if len(p.inner) >= 40 && p.inner[0]>>4 == 6 {
		p.innerTTL = int(p.inner[7])
	}
	return p, true
}

// fouPorts are the UDP ports the matrix's fou cases send GRE (RFC 8086's
// 4754), IPIP and sit to, and the protocol each carries.
var fouPorts = map[int]int{4754: 47, 5555: 4, 5556: 41}

// fouDport is the UDP destination port of a UDP payload, -1 otherwise.
func fouDport(proto int, payload []byte) int {
	if proto != 17 || len(payload) < 8 {
		return -1
	}
	return int(binary.BigEndian.Uint16(payload[2:4]))
}

// decodeGRE parses an RFC 2784/2890 header and checks its checksum, which
// covers the GRE header and payload.
func decodeGRE(b []byte) (*greHeader, int, bool) {
	if len(b) < 4 {
		return nil, 0, false
	}
	flags := binary.BigEndian.Uint16(b[0:2])
	g := &greHeader{
		csum:  flags&0x8000 != 0,
		key:   flags&0x2000 != 0,
		seq:   flags&0x1000 != 0,
		proto: binary.BigEndian.Uint16(b[2:4]),
	}
	off := 4
	if g.csum {
		if len(b) < off+4 {
			return nil, 0, false
		}
		g.csumOK = onesSum(b) == 0xffff
		g.csumUnfilled = binary.BigEndian.Uint32(b[4:8]) == 0
		off += 4
	}
	if g.key {
		if len(b) < off+4 {
			return nil, 0, false
		}
		g.keyVal = binary.BigEndian.Uint32(b[off:])
		off += 4
	}
	if g.seq {
		if len(b) < off+4 {
			return nil, 0, false
		}
		g.seqVal = binary.BigEndian.Uint32(b[off:])
		off += 4
	}
	return g, off, true
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
