package pmtu

import (
	"math"
	"sync"
	"time"
)

// Default limit on the ICMP errors one tunnel originates.
//
// Linux exempts Fragmentation Needed and Packet Too Big from its
// per-destination limit (net.ipv4.icmp_ratelimit, 1 per 1000 ms, and
// its IPv6 twin) because delaying them stalls path MTU discovery; the
// only bound left on them is the host-wide one, net.ipv4.icmp_msgs_per_sec
// = 1000 with net.ipv4.icmp_msgs_burst = 50. We apply that bound per
// tunnel: a burst of 50 lets that many flows learn the MTU at once, and
// one error per millisecond afterwards keeps a sender that ignores them
// from turning every oversize packet into work for us. An error is
// always smaller than the packet that caused it, so there is no
// amplification to guard against.
const (
	DefaultEvery = time.Millisecond
	DefaultBurst = 50
)

// Limiter is a token bucket (implemented as the equivalent generic cell
// rate algorithm, one timestamp of state) bounding the rate of ICMP
// errors one tunnel originates. The clock is the caller's: Allow takes
// the current time, so tests need no sleeping.
//
// The zero value allows DefaultBurst errors at once and one more every
// DefaultEvery. A Limiter is safe for concurrent use and never
// allocates; it must not be copied after first use.
type Limiter struct {
	mu    sync.Mutex
	every time.Duration // one token per every; 0 = use the defaults
	tol   time.Duration // (burst-1)*every: how far tat may run ahead
	off   bool          // SetLimit(0, …): no limit at all
	tat   time.Time
}

// SetLimit makes l allow burst errors at once and then one per every.
// every = 0 removes the limit; burst below 1 counts as 1.
func (l *Limiter) SetLimit(every time.Duration, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.off = every <= 0
	l.every = every
	l.tol = 0
	if n := time.Duration(max(burst, 1) - 1); every > 0 && n > 0 {
		l.tol = math.MaxInt64 // saturate instead of overflowing
		if n <= math.MaxInt64/every {
			l.tol = n * every
		}
	}
	l.tat = time.Time{}
}

// Allow reports whether an error may be sent at now, and if so takes a
// token. now should come from a monotonic clock (time.Now does): a clock
// that steps backwards withholds tokens for as long as it stepped.
func (l *Limiter) Allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off {
		return true
	}
	every, tol := l.every, l.tol
	if every == 0 {
		every, tol = DefaultEvery, (DefaultBurst-1)*DefaultEvery
	}
	// GCRA: tat is the theoretical arrival time of the next conforming
	// error; up to burst-1 intervals of it may lie in the future.
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > tol {
		return false
	}
	l.tat = tat.Add(every)
	return true
}
