package keepalive

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// State is the tunnel's line protocol as keepalives see it.
type State uint8

const (
	// Up: replies come back; the engine keeps the carrier on.
	Up State = iota + 1
	// Hold: replies come back after a down, but damping wants more
	// consecutive good ones; the carrier stays off.
	Hold
	// Down: Retries keepalives went unanswered; the carrier is off.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Hold:
		return "hold"
	case Down:
		return "down"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Verdict is what Reply made of a payload. Every verdict but Accepted is a
// rejection and is counted as forged (RejectedNoPayload, RejectedMalformed,
// RejectedForged) or stale (RejectedStale, RejectedFuture,
// RejectedReplayed).
type Verdict uint8

const (
	// Accepted: ours, fresh and newer than any reply before it.
	Accepted Verdict = iota + 1
	// RejectedNoPayload: nothing after the GRE header. A reflecting peer
	// returns our payload unchanged, so this was not built by us.
	RejectedNoPayload
	// RejectedMalformed: shorter than PayloadLen, or wrong magic or
	// version.
	RejectedMalformed
	// RejectedForged: the MAC does not verify with our key.
	RejectedForged
	// RejectedStale: ours, but older than Period×Retries.
	RejectedStale
	// RejectedFuture: ours, but stamped later than now; only a clock
	// that went backwards produces this.
	RejectedFuture
	// RejectedReplayed: ours and fresh, but not newer than the last
	// accepted reply: a duplicate, a replay or an overtaken reply.
	RejectedReplayed
)

var verdictNames = [...]string{
	Accepted:          "accepted",
	RejectedNoPayload: "rejected: no payload",
	RejectedMalformed: "rejected: malformed payload",
	RejectedForged:    "rejected: bad MAC",
	RejectedStale:     "rejected: stale",
	RejectedFuture:    "rejected: timestamp in the future",
	RejectedReplayed:  "rejected: replayed",
}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) && verdictNames[v] != "" {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Forged reports whether v is a rejection counted as forged: the payload
// was not built with our key.
func (v Verdict) Forged() bool {
	return v == RejectedNoPayload || v == RejectedMalformed || v == RejectedForged
}

// Stale reports whether v is a rejection counted as stale: built with our
// key, but not a fresh answer.
func (v Verdict) Stale() bool {
	return v == RejectedStale || v == RejectedFuture || v == RejectedReplayed
}

// ReasonKind says why a state changed.
type ReasonKind uint8

const (
	// ReasonUnanswered: N keepalives in a row went unanswered.
	ReasonUnanswered ReasonKind = iota + 1
	// ReasonReply: a good reply arrived and damping asked for no more.
	ReasonReply
	// ReasonDamping: N of the Of consecutive good replies damping
	// requires have arrived.
	ReasonDamping
)

// Reason is why a state changed. It is a value, not a string, so that
// Sent and Reply do not allocate; String formats it for the log.
type Reason struct {
	Kind  ReasonKind
	N, Of int
}

func (r Reason) String() string {
	switch r.Kind {
	case ReasonUnanswered:
		if r.N == 1 {
			return "1 keepalive unanswered"
		}
		return fmt.Sprintf("%d keepalives unanswered", r.N)
	case ReasonReply:
		return "reply received"
	case ReasonDamping:
		return fmt.Sprintf("damping: %d of %d good replies", r.N, r.Of)
	}
	return ""
}

// Event is a state change. The zero Event means none happened.
type Event struct {
	From, To State
	At       time.Time
	Reason   Reason
}

// Changed reports whether e is a state change the engine should log and
// act on (set the carrier to e.To == Up).
func (e Event) Changed() bool { return e.From != e.To }

// String formats e for the log, e.g. "up -> down: 3 keepalives unanswered".
func (e Event) String() string {
	if !e.Changed() {
		return "no change"
	}
	return fmt.Sprintf("%v -> %v: %v", e.From, e.To, e.Reason)
}

// Snapshot is a copy of a Machine's state and counters for display.
type Snapshot struct {
	State State
	// Since is when State was entered.
	Since   time.Time
	Period  time.Duration
	Retries int
	// Unanswered is Cisco's counter: keepalives sent since the last
	// accepted reply.
	Unanswered int

	Sent     uint64 // keepalives sent
	Received uint64 // replies accepted
	// Rejected = RejectedForged + RejectedStale.
	Rejected       uint64
	RejectedForged uint64 // no payload, malformed, or bad MAC
	RejectedStale  uint64 // stale, from the future, or replayed

	// LastReply is when the last reply was accepted; zero if none was.
	LastReply time.Time
	// LastReplyAge is now − LastReply, or 0 if LastReply is zero.
	LastReplyAge time.Duration
	// LastRTT is the round trip of the last accepted reply: from the
	// timestamp it carries (when its keepalive was sent) to its arrival;
	// 0 if none was accepted.
	LastRTT time.Duration

	// Good is, in Hold, the consecutive good replies so far.
	Good int
	// Required is how many consecutive good replies bring the tunnel up:
	// in Down and Hold the current requirement, in Up the one the next
	// down would impose.
	Required int
}

// String formats s for `tunnel show`, e.g.
// "hold (1 of 4 good replies), last reply 2s ago, sent 12 received 9
// rejected 1 (forged 1, stale 0)".
func (s Snapshot) String() string {
	state := s.State.String()
	if s.State == Hold {
		state = fmt.Sprintf("hold (%d of %d good replies)", s.Good, s.Required)
	}
	last := "no reply yet"
	if !s.LastReply.IsZero() {
		last = fmt.Sprintf("last reply %v ago", s.LastReplyAge.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s, %s, sent %d received %d rejected %d (forged %d, stale %d)",
		state, last, s.Sent, s.Received, s.Rejected, s.RejectedForged, s.RejectedStale)
}

// Machine is one tunnel's keepalive state machine. Create it with New.
// Its methods take the current time from the caller and are safe for
// concurrent use.
type Machine struct {
	mu sync.Mutex

	cfg        Config
	penaltyCap int // smallest penalty at which the requirement is DampMax

	// Authentication: a random SipHash key and timestamp bias, fixed at
	// New. A timestamp is bias + nanoseconds since epoch, mod 2^64.
	k0, k1 uint64
	bias   uint64
	epoch  time.Time

	state      State
	since      time.Time // when state was entered
	next       time.Time // when the next keepalive is due
	unanswered int       // Cisco's counter
	lastTS     int64     // newest accepted timestamp, ns since epoch
	haveTS     bool      // lastTS is set
	lastReply  time.Time
	lastRTT    time.Duration

	// Damping. penalty is the doubling exponent the next down applies;
	// required and good are meaningful in Down and Hold.
	penalty  int
	required int
	good     int

	ipID uint16

	sent, received, forged, stale uint64
}

// New returns a Machine that starts Up, as a Cisco tunnel does, with its
// first keepalive due at now. It draws the SipHash key and timestamp bias
// from crypto/rand.
func New(cfg Config, now time.Time) (*Machine, error) {
	var seed [24]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("keepalive key: %w", err)
	}
	return newWithKey(cfg, now, [16]byte(seed[:16]), binary.LittleEndian.Uint64(seed[16:]))
}

// newWithKey is New with a chosen key and bias, for tests.
func newWithKey(cfg Config, now time.Time, key [16]byte, bias uint64) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	m := &Machine{
		cfg:      cfg,
		k0:       binary.LittleEndian.Uint64(key[:8]),
		k1:       binary.LittleEndian.Uint64(key[8:]),
		bias:     bias,
		epoch:    now,
		state:    Up,
		since:    now,
		next:     now,
		required: cfg.DampInitial,
	}
	for r := cfg.DampInitial; r < cfg.DampMax; r *= 2 {
		m.penaltyCap++
	}
	return m, nil
}

// Continue makes m, new for a changed period or retry count, carry on
// where old stands: the line protocol state and since when, the unanswered
// count, flap damping (a flapping tunnel must not be forgiven by a
// reconfiguration), the counters, and the key, bias and epoch, so that
// replies to keepalives old sent still verify and replays of them are still
// refused. The next keepalive is due when old had it due, but no later than
// one new period from now. old must not be used afterwards.
func (m *Machine) Continue(old *Machine, now time.Time) {
	old.mu.Lock()
	defer old.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.k0, m.k1, m.bias, m.epoch = old.k0, old.k1, old.bias, old.epoch
	m.state, m.since, m.unanswered = old.state, old.since, old.unanswered
	m.lastTS, m.haveTS, m.lastReply, m.lastRTT = old.lastTS, old.haveTS, old.lastReply, old.lastRTT
	m.penalty, m.good = min(old.penalty, m.penaltyCap), old.good
	m.required = min(max(old.required, m.cfg.DampInitial), m.cfg.DampMax)
	m.ipID = old.ipID
	m.sent, m.received, m.forged, m.stale = old.sent, old.received, old.forged, old.stale
	m.next = old.next
	if limit := now.Add(m.cfg.Period); m.next.After(limit) {
		m.next = limit
	}
}

// Config returns the configuration in effect, defaults filled in.
func (m *Machine) Config() Config { return m.cfg }

// State returns the current state; the carrier should be on exactly when
// it is Up.
func (m *Machine) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// NextDeadline returns when Tick next wants to be called.
func (m *Machine) NextDeadline() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.next
}

// Tick reports whether a keepalive is due at now. When it returns true the
// caller sends one (BuildInner, encapsulate, write) and calls Sent. The next
// keepalive is due one Period later; if the caller fell more than a Period
// behind, it is due one Period after now rather than in a burst.
func (m *Machine) Tick(now time.Time) (send bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Before(m.next) {
		return false
	}
	m.next = m.next.Add(m.cfg.Period)
	if !m.next.After(now) {
		m.next = now.Add(m.cfg.Period)
	}
	return true
}

// Sent records a keepalive sent at now, whether or not the write
// succeeded. If Retries keepalives were already unanswered — each had a
// whole Period to come back — the line protocol goes down and the returned
// Event says so.
func (m *Machine) Sent(now time.Time) Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent++
	var ev Event
	if m.unanswered >= m.cfg.Retries && m.state != Down {
		ev = m.enter(now, Down, Reason{Kind: ReasonUnanswered, N: m.unanswered})
	}
	if m.state == Hold && m.unanswered > 0 {
		// The previous keepalive went unanswered: the good replies
		// are no longer consecutive.
		m.good = 0
	}
	m.unanswered++
	return ev
}

// BuildInner writes into buf the inner keepalive packet (IPv4 remote→local,
// GRE protocol 0, authenticated payload) that the engine then encapsulates
// towards remote, and returns its length, InnerLen. Between IPv6 addresses
// (ip6gre) the inner header is IPv6 and the length InnerLen6. It returns
// 0, writing nothing, if buf is too short or the addresses are not both
// IPv4 or both IPv6. It does not allocate.
func (m *Machine) BuildInner(buf []byte, local, remote netip.Addr, now time.Time) (n int) {
	l, ok1 := ipv4(local)
	r, ok2 := ipv4(remote)
	v6 := local.Is6() && remote.Is6() && !ok1 && !ok2
	switch {
	case v6 && len(buf) >= InnerLen6:
		n = InnerLen6
	case ok1 && ok2 && len(buf) >= InnerLen:
		n = InnerLen
	default:
		return 0
	}
	m.mu.Lock()
	m.ipID++
	id := m.ipID
	ts := m.bias + uint64(now.Sub(m.epoch))
	m.mu.Unlock()

	if v6 {
		writeInner6(buf, local, remote)
	} else {
		writeInner(buf, l, r, id)
	}
	writePayload(buf[n-PayloadLen:], m.k0, m.k1, ts)
	return n
}

// Reply judges the payload after the GRE header of a keepalive reply
// (GRE protocol type 0) that arrived at now. Only an Accepted reply
// resets the unanswered counter and counts towards coming up; the
// returned Event says if the state changed. It never panics and does not
// allocate; bytes after the first PayloadLen are ignored.
func (m *Machine) Reply(now time.Time, payload []byte) (Verdict, Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ts := m.verify(now, payload)
	switch {
	case v.Forged():
		m.forged++
		return v, Event{}
	case v != Accepted:
		m.stale++
		return v, Event{}
	}

	m.received++
	m.lastReply = now
	m.lastRTT = time.Duration(int64(now.Sub(m.epoch)) - ts)
	m.lastTS, m.haveTS = ts, true
	m.unanswered = 0

	switch m.state {
	case Down:
		if m.required <= 1 {
			return v, m.enter(now, Up, Reason{Kind: ReasonReply})
		}
		ev := m.enter(now, Hold, Reason{Kind: ReasonDamping, N: 1, Of: m.required})
		m.good = 1
		return v, ev
	case Hold:
		m.good++
		if m.good >= m.required {
			return v, m.enter(now, Up, Reason{Kind: ReasonDamping, N: m.good, Of: m.required})
		}
	}
	return v, Event{}
}

// verify checks a payload in order of cost and returns its verdict and,
// if it is ours, its timestamp as nanoseconds since epoch. The MAC is
// checked before the timestamp so that a forgery is called forged, not
// stale.
func (m *Machine) verify(now time.Time, p []byte) (Verdict, int64) {
	if v := payloadShape(p); v != Accepted {
		return v, 0
	}
	if !macOK(p, m.k0, m.k1) {
		return RejectedForged, 0
	}
	ts := int64(binary.BigEndian.Uint64(p[timestampOff:]) - m.bias)
	age := time.Duration(int64(now.Sub(m.epoch)) - ts)
	switch {
	case age < 0:
		return RejectedFuture, ts
	case age >= m.window():
		return RejectedStale, ts
	case m.haveTS && ts <= m.lastTS:
		return RejectedReplayed, ts
	}
	return Accepted, ts
}

// window is how long a keepalive stays fresh: Period×Retries, the time
// within which an answer still keeps the tunnel up.
func (m *Machine) window() time.Duration {
	return m.cfg.Period * time.Duration(m.cfg.Retries)
}

// enter moves to state to at now and returns the Event. Going down from
// Up is a flap: it fixes how many good replies bring the tunnel back and
// doubles that for the next flap.
func (m *Machine) enter(now time.Time, to State, why Reason) Event {
	ev := Event{From: m.state, To: to, At: now, Reason: why}
	if m.state == Up && to == Down {
		p := m.decayedPenalty(now)
		m.required = m.requiredFor(p)
		m.penalty = min(p+1, m.penaltyCap)
	}
	m.good = 0
	m.state = to
	m.since = now
	return ev
}

// decayedPenalty is the penalty after halving the requirement once per
// DampDecay spent Up.
func (m *Machine) decayedPenalty(now time.Time) int {
	if m.state != Up {
		return m.penalty
	}
	steps := now.Sub(m.since) / m.cfg.DampDecay
	if steps >= time.Duration(m.penalty) {
		return 0
	}
	return m.penalty - int(steps)
}

// requiredFor is DampInitial doubled p times, capped at DampMax.
func (m *Machine) requiredFor(p int) int {
	r := m.cfg.DampInitial
	for ; p > 0 && r < m.cfg.DampMax; p-- {
		r *= 2
	}
	return min(r, m.cfg.DampMax)
}

// Snapshot returns the state and counters as of now.
func (m *Machine) Snapshot(now time.Time) Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{
		State:          m.state,
		Since:          m.since,
		Period:         m.cfg.Period,
		Retries:        m.cfg.Retries,
		Unanswered:     m.unanswered,
		Sent:           m.sent,
		Received:       m.received,
		Rejected:       m.forged + m.stale,
		RejectedForged: m.forged,
		RejectedStale:  m.stale,
		LastReply:      m.lastReply,
		LastRTT:        m.lastRTT,
		Good:           m.good,
		Required:       m.required,
	}
	if !m.lastReply.IsZero() {
		s.LastReplyAge = now.Sub(m.lastReply)
	}
	if m.state == Up {
		s.Good = 0
		s.Required = m.requiredFor(m.decayedPenalty(now))
	}
	return s
}
