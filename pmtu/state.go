package pmtu

import (
	"sync"
	"time"
)

const (
	// Expires is how long a learnt path MTU holds before the tunnel tries
	// its device MTU again, like Linux's net.ipv4.route.mtu_expires (600 s).
	// RFC 1191 §6.3 asks for no less than 10 minutes between attempts to
	// grow the path MTU.
	Expires = 10 * time.Minute

	// MinPathMTU is the lowest underlay path MTU we believe, Linux's
	// net.ipv4.route.min_pmtu (512 + 20 + 20). A report below it is raised
	// to it, as Linux does: an underlay hop claiming a smaller MTU would
	// otherwise shrink the tunnel to nothing (RFC 4459 §3.1 warns about
	// exactly this kind of forged report). With the largest GRE overhead
	// (36 bytes) the tunnel MTU stays at 516 or more, well above IPv4's 68.
	MinPathMTU = 552
)

// State is the path MTU soft state of one tunnel (RFC 2003 §5.1.2,
// RFC 4459 §3.2): the MTU of the device as configured or derived from
// the underlay route, lowered for a while when the underlay reports
// that our outer packets are too big.
//
// The zero value knows no device MTU; call SetDevice first. A State is
// safe for concurrent use (the underlay reader lowers it while the
// device reader asks for it) and never allocates; it must not be copied
// after first use.
type State struct {
	mu       sync.Mutex
	device   int       // tunnel device MTU
	overhead int       // outer header bytes the tunnel adds
	learnt   int       // learnt underlay path MTU; 0 when none
	expires  time.Time // when learnt stops counting
}

// SetDevice records the tunnel device MTU and the encapsulation overhead
// (outer IPv4 header plus GRE header, as encap adds them). A learnt path
// MTU is kept: it describes the underlay path, not the device.
func (s *State) SetDevice(mtu, overhead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device, s.overhead = mtu, max(overhead, 0)
}

// Forget drops a learnt path MTU: the tunnel's endpoints changed, and
// what was learnt describes another path (Linux keeps it per destination,
// in the route exception of the old remote).
func (s *State) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.learnt = 0
}

// Lower records that the underlay path to the tunnel's remote carries
// outer packets of at most pathMTU bytes, as reported by an ICMP
// Fragmentation Needed about one of our outer packets (its Next-Hop
// MTU, see ReportedMTU) or by the route MTU after a send failed with
// EMSGSIZE. It returns whether the tunnel's effective MTU went down, in
// which case the next oversize inner packet is answered with the new
// value.
//
// A report no lower than what is already known is ignored, except that
// an equal one restarts the Expires timer, as the path is evidently
// still narrow. A report below MinPathMTU counts as MinPathMTU.
func (s *State) Lower(now time.Time, pathMTU int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pathMTU = max(pathMTU, MinPathMTU)
	current := s.device + s.overhead
	if s.learnt != 0 && now.Before(s.expires) {
		current = min(current, s.learnt)
	}
	if pathMTU > current {
		return false
	}
	before := s.effective(now)
	s.learnt = pathMTU
	s.expires = now.Add(Expires)
	return s.effective(now) < before
}

// Effective returns the tunnel's current path MTU for inner packets at
// now: the device MTU, or less while a learnt underlay path MTU has not
// expired. It is never below 1: a device MTU too small for the overhead
// is a configuration error the caller reports elsewhere. It takes a
// lock (about 40 ns uncontended here); the engine calls it once per
// batch of packets read together, with the batch's time.
func (s *State) Effective(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effective(now)
}

func (s *State) effective(now time.Time) int {
	mtu := s.device
	if s.learnt != 0 && now.Before(s.expires) {
		mtu = min(mtu, s.learnt-s.overhead)
	}
	return max(mtu, 1)
}

// Learnt returns the learnt underlay path MTU and when it expires, for
// display; ok is false when nothing learnt is in force at now.
func (s *State) Learnt(now time.Time) (pathMTU int, expires time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.learnt == 0 || !now.Before(s.expires) {
		return 0, time.Time{}, false
	}
	return s.learnt, s.expires, true
}

// plateaus are the MTU plateaus of RFC 1191 §7, largest first.
var plateaus = [...]int{65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, MinMTU4}

// ReportedMTU interprets the Next-Hop MTU field of an ICMP
// Fragmentation Needed about an outer packet whose Total Length was
// sent. A router that predates RFC 1191 leaves the field zero, and a
// value that is not below the length of the packet it refused is
// nonsense; in both cases the next lower plateau of RFC 1191 §5 and §7
// stands in for it.
func ReportedMTU(nextHop, sent int) int {
	if nextHop >= MinMTU4 && nextHop < sent {
		return nextHop
	}
	for _, p := range plateaus {
		if p < sent {
			return p
		}
	}
	return MinMTU4
}
