package encap

import (
	"encoding/binary"
	"errors"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/pmtu"
)

// Errors returned by Fragment.
var (
	ErrFragmentDF     = errors.New("encap: packet is larger than the MTU and has DF set")
	ErrFragmentMTU    = errors.New("encap: MTU below IPv4's minimum of 68")
	ErrFragmentBuffer = errors.New("encap: not enough fragment buffers")
)

// Fragment splits the outer IPv4 packet pkt into RFC 791 fragments of at most
// mtu bytes each, written into frags[i] (each needs capacity for mtu bytes),
// and returns how many it wrote. A raw socket with IP_HDRINCL does not
// fragment on its own, so the engine calls this for outer packets that do
// not fit the path and carry no DF. The receiving kernel reassembles them
// before its raw socket sees the packet. A packet that fits is copied into
// frags[0] as it is. An mtu below IPv4's minimum of 68 (RFC 791 §3.2), as
// a route with `mtu lock 28` would give, is unusable: ErrFragmentMTU.
//
// Every fragment but the last carries a multiple of 8 payload bytes. The
// first fragment keeps all of pkt's header options, the others only those
// with the copied flag (RFC 791 section 3.1); gretun's own outer headers
// carry none. pkt is not modified, and nothing is allocated.
func Fragment(pkt []byte, mtu int, frags [][]byte) (int, error) {
	ip := header.IPv4(pkt)
	if !ip.IsValid() || ip.TotalLen() != len(pkt) {
		return 0, ErrNotIP
	}
	if mtu < pmtu.MinMTU4 {
		return 0, ErrFragmentMTU
	}
	if len(pkt) <= mtu {
		return whole(pkt, frags)
	}
	if ip.DF() {
		return 0, ErrFragmentDF
	}
	hl := ip.HeaderLen() // at most 60: 8 payload bytes fit in 68
	// The header of the fragments after the first: the copied options only.
	var later [header.IPv4MaxLen]byte
	laterLen, ok := copiedOptions(pkt[:hl], &later)
	if !ok {
		return 0, ErrNotIP
	}
	// The packet may itself be a fragment: keep its offset and MF.
	baseOff := ip.FragmentOffset()
	lastMF := ip.MoreFragments()
	payload := pkt[hl:]
	if baseOff+len(payload) > header.IPv4MaxPacket {
		return 0, ErrNotIP
	}
	h := pkt[:hl]
	n, done := 0, 0
	for done < len(payload) {
		if n == len(frags) {
			return 0, ErrFragmentBuffer
		}
		chunk := (mtu - len(h)) &^ 7
		part := payload[done:]
		more := lastMF
		if len(part) > chunk {
			part = part[:chunk]
			more = true
		}
		size := len(h) + len(part)
		if cap(frags[n]) < size {
			return 0, ErrFragmentBuffer
		}
		f := frags[n][:size]
		copy(f, h)
		copy(f[len(h):], part)
		fh := header.IPv4(f)
		fh[header.IPv4VersIHL] = 0x40 | byte(len(h)/4)
		fh.SetTotalLen(size)
		ff := uint16((baseOff + done) / 8)
		if more {
			ff |= header.IPv4FlagMF
		}
		fh.SetFlagsFrag(ff)
		fh.UpdateChecksum()
		frags[n] = f
		n++
		done += len(part)
		h = later[:laterLen]
	}
	return n, nil
}

// copiedOptions writes into dst the header h keeps for its non-first
// fragments: the fixed part and the options whose copied flag is set,
// padded with end-of-options to a multiple of 4. It reports false when an
// option's length runs past the header.
func copiedOptions(h []byte, dst *[header.IPv4MaxLen]byte) (int, bool) {
	n := copy(dst[:], h[:header.IPv4MinLen])
	for i := header.IPv4MinLen; i < len(h); {
		switch t := h[i]; t {
		case 0: // end of option list
			i = len(h)
		case 1: // no operation; not copied
			i++
		default:
			if i+1 >= len(h) {
				return 0, false
			}
			l := int(h[i+1])
			if l < 2 || i+l > len(h) {
				return 0, false
			}
			if t&0x80 != 0 {
				n += copy(dst[n:], h[i:i+l])
			}
			i += l
		}
	}
	for n%4 != 0 {
		dst[n] = 0
		n++
	}
	return n, true
}

// Fragment6 splits the outer IPv6 packet pkt into RFC 8200 section 4.5
// fragments of at most mtu bytes each, written into frags[i] (each needs
// capacity for mtu bytes), all with identification id, and returns how many
// it wrote. A raw socket with IPV6_HDRINCL does not fragment, so the engine
// calls it for a tunnel packet that may be fragmented (its inner packet
// is an IPv6 packet of at most 1280 bytes, RFC 2473 section 7.1) and does
// not fit the path. The unfragmentable part is the fixed header alone:
// gretun's encapsulation limit option goes after the fragment header, as
// Linux's ip6_tnl puts it (ipv6_push_frag_opts). A packet that fits is
// copied into frags[0] as it is; an mtu below 1280 is ErrFragmentMTU. pkt
// is not modified, and nothing is allocated.
func Fragment6(pkt []byte, mtu int, id uint32, frags [][]byte) (int, error) {
	ip := header.IPv6(pkt)
	if !ip.IsValid() || header.IPv6HeaderLen+ip.PayloadLen() != len(pkt) || ip.NextHeader() == header.IPv6Fragment {
		return 0, ErrNotIP
	}
	if mtu < header.IPv6MinMTU {
		return 0, ErrFragmentMTU
	}
	if len(pkt) <= mtu {
		return whole(pkt, frags)
	}
	const hl = header.IPv6HeaderLen + header.IPv6FragmentLen
	chunk := (mtu - hl) &^ 7
	payload := pkt[header.IPv6HeaderLen:]
	n := 0
	for done := 0; done < len(payload); done += chunk {
		if n == len(frags) {
			return 0, ErrFragmentBuffer
		}
		part := payload[done:]
		more := len(part) > chunk
		if more {
			part = part[:chunk]
		}
		if cap(frags[n]) < hl+len(part) {
			return 0, ErrFragmentBuffer
		}
		f := frags[n][:hl+len(part)]
		copy(f, pkt[:header.IPv6HeaderLen])
		header.IPv6(f).SetPayloadLen(header.IPv6FragmentLen + len(part))
		f[header.IPv6NextHeader] = header.IPv6Fragment
		fh := f[header.IPv6HeaderLen:hl]
		fh[0], fh[1] = ip.NextHeader(), 0
		off := uint16(done)
		if more {
			off |= header.IPv6FragMoreFlag
		}
		binary.BigEndian.PutUint16(fh[2:], off)
		binary.BigEndian.PutUint32(fh[4:], id)
		copy(f[hl:], part)
		frags[n] = f
		n++
	}
	return n, nil
}

// whole copies a packet that fits into frags[0], its only fragment.
func whole(pkt []byte, frags [][]byte) (int, error) {
	if len(frags) == 0 || cap(frags[0]) < len(pkt) {
		return 0, ErrFragmentBuffer
	}
	frags[0] = frags[0][:len(pkt)]
	copy(frags[0], pkt)
	return 1, nil
}
