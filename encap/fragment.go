package encap

import (
	"errors"

	"github.com/gretun/gretun/header"
)

// Errors returned by Fragment.
var (
	ErrFragmentDF     = errors.New("encap: packet is larger than the MTU and has DF set")
	ErrFragmentMTU    = errors.New("encap: MTU too small to fragment into")
	ErrFragmentBuffer = errors.New("encap: not enough fragment buffers")
)

// Fragment splits the outer IPv4 packet pkt into RFC 791 fragments of at most
// mtu bytes each, written into frags[i] (each needs capacity for mtu bytes),
// and returns how many it wrote. A raw socket with IP_HDRINCL does not
// fragment on its own, so the engine calls this for outer packets that do
// not fit the path and carry no DF. The receiving kernel reassembles them
// before its raw socket sees the packet.
//
// Options in pkt's header are copied into every fragment (gretun's own outer
// headers never carry options).
func Fragment(pkt []byte, mtu int, frags [][]byte) (int, error) {
	ip := header.IPv4(pkt)
	if !ip.IsValid() || ip.TotalLen() != len(pkt) {
		return 0, ErrNotIP
	}
	if len(pkt) <= mtu {
		if len(frags) == 0 || cap(frags[0]) < len(pkt) {
			return 0, ErrFragmentBuffer
		}
		frags[0] = frags[0][:len(pkt)]
		copy(frags[0], pkt)
		return 1, nil
	}
	if ip.DF() {
		return 0, ErrFragmentDF
	}
	hl := ip.HeaderLen()
	chunk := (mtu - hl) &^ 7 // every fragment but the last carries a multiple of 8 bytes
	if chunk <= 0 {
		return 0, ErrFragmentMTU
	}
	payload := pkt[hl:]
	need := (len(payload) + chunk - 1) / chunk
	if need > len(frags) {
		return 0, ErrFragmentBuffer
	}
	// The packet may itself be a fragment: keep its offset and MF.
	baseOff := ip.FragmentOffset()
	lastMF := ip.MoreFragments()
	for i := 0; i < need; i++ {
		part := payload[i*chunk:]
		more := lastMF
		if len(part) > chunk {
			part = part[:chunk]
			more = true
		}
		n := hl + len(part)
		if cap(frags[i]) < n {
			return 0, ErrFragmentBuffer
		}
		f := frags[i][:n]
		copy(f, pkt[:hl])
		copy(f[hl:], part)
		fh := header.IPv4(f)
		fh.SetTotalLen(n)
		ff := uint16((baseOff + i*chunk) / 8)
		if more {
			ff |= header.IPv4FlagMF
		}
		fh.SetFlagsFrag(ff)
		fh.UpdateChecksum()
		frags[i] = f
	}
	return need, nil
}
