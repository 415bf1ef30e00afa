package keepalive

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0     = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	local  = netip.MustParseAddr("192.0.2.1")
	remote = netip.MustParseAddr("192.0.2.2")
	// testKey is the SipHash paper's key 00 01 … 0f.
	testKey = [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
)

// rtt is how long after a keepalive its reflected reply arrives.
const rtt = time.Millisecond

// harness drives a Machine the way the engine does, with a fake clock.
type harness struct {
	t   *testing.T
	m   *Machine
	now time.Time
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	m, err := newWithKey(cfg, t0, testKey, 0x0123456789abcdef)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, m: m, now: t0}
}

// keepalive moves the clock to the next deadline, lets Tick decide, builds
// and "sends" a keepalive and returns its payload, as the far end would
// reflect it, and the Event from Sent.
func (h *harness) keepalive() ([]byte, Event) {
	h.t.Helper()
	if d := h.m.NextDeadline(); d.After(h.now) {
		h.now = d
	}
	if !h.m.Tick(h.now) {
		h.t.Fatalf("Tick(%v) = false at the deadline", h.now.Sub(t0))
	}
	var buf [InnerLen]byte
	if n := h.m.BuildInner(buf[:], local, remote, h.now); n != InnerLen {
		h.t.Fatalf("BuildInner = %d, want %d", n, InnerLen)
	}
	return append([]byte(nil), buf[IPv4HeaderLen+GREHeaderLen:]...), h.m.Sent(h.now)
}

// run plays steps: 'k' a keepalive answered after rtt, 'x' a keepalive
// lost. It returns each state change as "step: event".
func (h *harness) run(steps string) []string {
	h.t.Helper()
	var got []string
	for i, s := range steps {
		p, ev := h.keepalive()
		if ev.Changed() {
			got = append(got, fmt.Sprintf("%d: %v", i, ev))
		}
		switch s {
		case 'k':
			h.now = h.now.Add(rtt)
			v, ev := h.m.Reply(h.now, p)
			if v != Accepted {
				h.t.Fatalf("step %d: reply %v", i, v)
			}
			if ev.Changed() {
				got = append(got, fmt.Sprintf("%d: %v", i, ev))
			}
		case 'x':
		default:
			h.t.Fatalf("bad step %q", s)
		}
	}
	return got
}

func TestStateMachine(t *testing.T) {
	slow := Config{Period: time.Second, Retries: 3, DampDecay: time.Hour}
	tests := []struct {
		name  string
		cfg   Config
		steps string
		want  []string
		state State
	}{
		{
			name:  "answered keepalives keep it up",
			cfg:   slow,
			steps: "kkkkkk",
			state: Up,
		},
		{
			name:  "retries unanswered is not yet down",
			cfg:   slow,
			steps: "kxxx",
			state: Up,
		},
		{
			name:  "down when a keepalive is due with retries unanswered",
			cfg:   slow,
			steps: "kxxxx",
			want:  []string{"4: up -> down: 3 keepalives unanswered"},
			state: Down,
		},
		{
			name:  "losses below retries never go down",
			cfg:   slow,
			steps: "kxxkxxkxxk",
			state: Up,
		},
		{
			name:  "retries 1",
			cfg:   Config{Period: time.Second, Retries: 1},
			steps: "kkkxx",
			want:  []string{"4: up -> down: 1 keepalive unanswered"},
			state: Down,
		},
		{
			name:  "retries 5",
			cfg:   Config{Period: time.Second, Retries: 5},
			steps: "xxxxxx",
			want:  []string{"5: up -> down: 5 keepalives unanswered"},
			state: Down,
		},
		{
			name:  "keepalives continue while down and one reply recovers",
			cfg:   slow,
			steps: "kxxxxxxxk",
			want: []string{
				"4: up -> down: 3 keepalives unanswered",
				"8: down -> up: reply received",
			},
			state: Up,
		},
		{
			name:  "second flap needs two good replies",
			cfg:   slow,
			steps: "xxxxk" + "xxxxkk",
			want: []string{
				"3: up -> down: 3 keepalives unanswered",
				"4: down -> up: reply received",
				"8: up -> down: 3 keepalives unanswered",
				"9: down -> hold: damping: 1 of 2 good replies",
				"10: hold -> up: damping: 2 of 2 good replies",
			},
			state: Up,
		},
		{
			name:  "a lost keepalive in hold restarts the count",
			cfg:   Config{Period: time.Second, Retries: 3, DampInitial: 3, DampDecay: time.Hour},
			steps: "xxxx" + "kkxkk" + "k",
			want: []string{
				"3: up -> down: 3 keepalives unanswered",
				"4: down -> hold: damping: 1 of 3 good replies",
				"9: hold -> up: damping: 3 of 3 good replies",
			},
			state: Up,
		},
		{
			name:  "hold falls back to down and that is not a flap",
			cfg:   Config{Period: time.Second, Retries: 2, DampInitial: 2, DampDecay: time.Hour},
			steps: "xxx" + "kxxx" + "kk",
			want: []string{
				"2: up -> down: 2 keepalives unanswered",
				"3: down -> hold: damping: 1 of 2 good replies",
				"6: hold -> down: 2 keepalives unanswered",
				"7: down -> hold: damping: 1 of 2 good replies",
				"8: hold -> up: damping: 2 of 2 good replies",
			},
			state: Up,
		},
		{
			name:  "damping off",
			cfg:   Config{Period: time.Second, Retries: 1, DampInitial: 1, DampMax: 1},
			steps: "xxk" + "xxk" + "xxk",
			want: []string{
				"1: up -> down: 1 keepalive unanswered",
				"2: down -> up: reply received",
				"4: up -> down: 1 keepalive unanswered",
				"5: down -> up: reply received",
				"7: up -> down: 1 keepalive unanswered",
				"8: down -> up: reply received",
			},
			state: Up,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			got := h.run(tt.steps)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if s := h.m.State(); s != tt.state {
				t.Errorf("state %v, want %v", s, tt.state)
			}
		})
	}
}

// TestDownWithinBound checks the bound: after the far end goes
// silent the tunnel is down within Period×(Retries+1), whatever the phase
// of the outage against the keepalive timer.
func TestDownWithinBound(t *testing.T) {
	for _, retries := range []int{1, 2, 3, 5} {
		cfg := Config{Period: 100 * time.Millisecond, Retries: retries}
		h := newHarness(t, cfg)
		h.run("kk")
		// The far end dies right after answering the last keepalive.
		cut := h.now
		for i := 0; h.m.State() == Up; i++ {
			if i > 100 {
				t.Fatalf("retries %d: never went down", retries)
			}
			h.keepalive()
		}
		bound := cfg.Period * time.Duration(retries+1)
		if took := h.now.Sub(cut); took > bound {
			t.Errorf("retries %d: down after %v, want within %v", retries, took, bound)
		}
		if took := h.now.Sub(cut); took < cfg.Period*time.Duration(retries) {
			t.Errorf("retries %d: down after %v, before %d periods", retries, took, retries)
		}
	}
}

// flapUntilUp takes the tunnel down with lost keepalives, then answers
// keepalives until it is up, and returns how many good replies that took.
func (h *harness) flapUntilUp() int {
	h.t.Helper()
	for h.m.State() == Up {
		h.run("x")
	}
	n := 0
	for h.m.State() != Up {
		if n > MaxDamp {
			h.t.Fatal("never came up")
		}
		h.run("k")
		n++
	}
	return n
}

func TestDampingDoublesToCap(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []int
	}{
		{"defaults", Config{Period: time.Second, DampDecay: time.Hour},
			[]int{1, 2, 4, 8, 16, 16, 16}},
		{"initial 2 cap 16", Config{Period: time.Second, DampInitial: 2, DampDecay: time.Hour},
			[]int{2, 4, 8, 16, 16}},
		{"cap not a power of two", Config{Period: time.Second, DampInitial: 3, DampMax: 10, DampDecay: time.Hour},
			[]int{3, 6, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			var got []int
			for range tt.want {
				got = append(got, h.flapUntilUp())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("good replies needed per flap (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDampingDecays(t *testing.T) {
	cfg := Config{Period: time.Second, Retries: 3, DampDecay: 10 * time.Second}
	h := newHarness(t, cfg)
	for _, want := range []int{1, 2, 4} {
		if got := h.flapUntilUp(); got != want {
			t.Fatalf("flap needed %d good replies, want %d", got, want)
		}
	}
	// The next down would now need 8. Each DampDecay spent up halves it.
	steps := []struct {
		stayUp time.Duration
		want   int
	}{
		{0, 8},
		{9 * time.Second, 8},
		{10 * time.Second, 4},
		{19 * time.Second, 4},
		{20 * time.Second, 2},
		{30 * time.Second, 1},
		{time.Hour, 1},
	}
	upAt := h.m.Snapshot(h.now).Since
	for _, s := range steps {
		got := h.m.Snapshot(upAt.Add(s.stayUp)).Required
		if got != s.want {
			t.Errorf("after %v up: Required %d, want %d", s.stayUp, got, s.want)
		}
	}
	// Stay up for 2 DampDecay with answered keepalives: the next flap
	// needs 8/4 = 2.
	h.run(strings.Repeat("k", 20))
	if got := h.flapUntilUp(); got != 2 {
		t.Errorf("after 20s up, flap needed %d good replies, want 2", got)
	}
	// A short stay up doubles again.
	if got := h.flapUntilUp(); got != 4 {
		t.Errorf("immediate flap needed %d good replies, want 4", got)
	}
}

// TestDampingDecaysFromCap checks that flapping past the cap does not
// store up penalty: one DampDecay up after many flaps halves the cap.
func TestDampingDecaysFromCap(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second, Retries: 1, DampMax: 4, DampDecay: 5 * time.Second})
	for i := 0; i < 10; i++ {
		h.flapUntilUp()
	}
	upAt := h.m.Snapshot(h.now).Since
	if got := h.m.Snapshot(upAt).Required; got != 4 {
		t.Errorf("after 10 flaps: Required %d, want the cap 4", got)
	}
	if got := h.m.Snapshot(upAt.Add(5 * time.Second)).Required; got != 2 {
		t.Errorf("one DampDecay later: Required %d, want 2", got)
	}
}

func TestStartsUpAndFirstKeepaliveIsDue(t *testing.T) {
	m, err := New(Config{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if m.State() != Up {
		t.Errorf("state %v, want up", m.State())
	}
	if d := m.NextDeadline(); !d.Equal(t0) {
		t.Errorf("first deadline %v, want now", d)
	}
	if !m.Tick(t0) {
		t.Error("Tick at start = false")
	}
	if m.Tick(t0.Add(DefaultPeriod - 1)) {
		t.Error("Tick before the period = true")
	}
	if d := m.NextDeadline(); !d.Equal(t0.Add(DefaultPeriod)) {
		t.Errorf("second deadline %v, want +%v", d.Sub(t0), DefaultPeriod)
	}
	cfg := m.Config()
	want := Config{Period: 10 * time.Second, Retries: 3, DampInitial: 1, DampMax: 16, DampDecay: 5 * time.Minute}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestTickKeepsPhaseAndSkipsBursts(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second})
	h.m.Tick(t0)
	// A little late: the phase is kept.
	if !h.m.Tick(t0.Add(1300 * time.Millisecond)) {
		t.Fatal("Tick late = false")
	}
	if d := h.m.NextDeadline().Sub(t0); d != 2*time.Second {
		t.Errorf("next deadline +%v, want +2s", d)
	}
	// Far behind (e.g. suspended): one keepalive now, the next a Period
	// later, no burst.
	late := t0.Add(10*time.Second + 500*time.Millisecond)
	if !h.m.Tick(late) {
		t.Fatal("Tick far behind = false")
	}
	if h.m.Tick(late) {
		t.Error("second Tick at the same time = true")
	}
	if d := h.m.NextDeadline().Sub(late); d != time.Second {
		t.Errorf("next deadline %v after now, want 1s", d)
	}
}

// otherMachine is a Machine with a different key, standing in for an
// attacker that sees our packets' format but not our key.
func otherMachine(t *testing.T) *Machine {
	t.Helper()
	key := testKey
	key[0] ^= 1
	m, err := newWithKey(Config{Period: time.Second}, t0, key, 0x0123456789abcdef)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReplyVerdicts(t *testing.T) {
	cfg := Config{Period: time.Second, Retries: 3} // fresh for 3s
	build := func(m *Machine, at time.Duration) []byte {
		var b [InnerLen]byte
		m.BuildInner(b[:], local, remote, t0.Add(at))
		return b[IPv4HeaderLen+GREHeaderLen:]
	}
	mutate := func(p []byte, f func([]byte)) []byte {
		p = append([]byte(nil), p...)
		f(p)
		return p
	}
	tests := []struct {
		name string
		// payloads are replied in order; all but the last must be
		// accepted.
		payloads func(m *Machine) [][]byte
		at       time.Duration // when the last one arrives
		want     Verdict
	}{
		{"fresh", func(m *Machine) [][]byte { return [][]byte{build(m, 0)} }, rtt, Accepted},
		{"trailing bytes ignored", func(m *Machine) [][]byte {
			return [][]byte{append(build(m, 0), 0xde, 0xad)}
		}, rtt, Accepted},
		{"arrives at send time", func(m *Machine) [][]byte { return [][]byte{build(m, 0)} }, 0, Accepted},
		{"just fresh", func(m *Machine) [][]byte { return [][]byte{build(m, 0)} }, 3*time.Second - 1, Accepted},
		{"just stale", func(m *Machine) [][]byte { return [][]byte{build(m, 0)} }, 3 * time.Second, RejectedStale},
		{"very stale", func(m *Machine) [][]byte { return [][]byte{build(m, 0)} }, 1000 * time.Hour, RejectedStale},
		{"future", func(m *Machine) [][]byte { return [][]byte{build(m, time.Second)} }, time.Second - 1, RejectedFuture},
		{"built before the epoch", func(m *Machine) [][]byte { return [][]byte{build(m, -time.Second)} }, 0, Accepted},
		{"empty", func(m *Machine) [][]byte { return [][]byte{{}} }, rtt, RejectedNoPayload},
		{"nil", func(m *Machine) [][]byte { return [][]byte{nil} }, rtt, RejectedNoPayload},
		{"wrong magic", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { p[0] = 'G' })}
		}, rtt, RejectedMalformed},
		{"wrong version", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { p[versionOff] = 2 })}
		}, rtt, RejectedMalformed},
		{"reserved byte changed", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { p[versionOff+2] = 1 })}
		}, rtt, RejectedForged},
		{"timestamp changed", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { p[timestampOff+7] ^= 1 })}
		}, rtt, RejectedForged},
		{"MAC bit flipped", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { p[macOff+3] ^= 0x10 })}
		}, rtt, RejectedForged},
		{"MAC zeroed", func(m *Machine) [][]byte {
			return [][]byte{mutate(build(m, 0), func(p []byte) { clear(p[macOff:]) })}
		}, rtt, RejectedForged},
		{"other key", func(m *Machine) [][]byte {
			return [][]byte{build(otherMachine(t), 0)}
		}, rtt, RejectedForged},
		{"replayed", func(m *Machine) [][]byte {
			p := build(m, 0)
			return [][]byte{p, p}
		}, rtt, RejectedReplayed},
		{"two built at one instant count once", func(m *Machine) [][]byte {
			return [][]byte{build(m, 0), build(m, 0)}
		}, rtt, RejectedReplayed},
		{"overtaken by a newer reply", func(m *Machine) [][]byte {
			older, newer := build(m, 0), build(m, time.Second)
			return [][]byte{newer, older}
		}, time.Second + rtt, RejectedReplayed},
		{"newer after older", func(m *Machine) [][]byte {
			return [][]byte{build(m, 0), build(m, time.Second)}
		}, time.Second + rtt, Accepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, cfg)
			ps := tt.payloads(h.m)
			for _, p := range ps[:len(ps)-1] {
				if v, _ := h.m.Reply(t0.Add(tt.at), p); v != Accepted {
					t.Fatalf("earlier reply: %v", v)
				}
			}
			v, _ := h.m.Reply(t0.Add(tt.at), ps[len(ps)-1])
			if v != tt.want {
				t.Errorf("verdict %v, want %v", v, tt.want)
			}
		})
	}
}

func TestTruncatedPayloads(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second})
	p, _ := h.keepalive()
	for n := 1; n < PayloadLen; n++ {
		if v, _ := h.m.Reply(h.now, p[:n]); v != RejectedMalformed {
			t.Errorf("payload of %d bytes: %v, want %v", n, v, RejectedMalformed)
		}
	}
	// The intact payload is still good afterwards: rejections leave no
	// trace in the replay state.
	if v, _ := h.m.Reply(h.now, p); v != Accepted {
		t.Errorf("intact payload after truncated ones: %v", v)
	}
	s := h.m.Snapshot(h.now)
	if s.RejectedForged != PayloadLen-1 || s.Received != 1 {
		t.Errorf("forged %d received %d, want %d and 1", s.RejectedForged, s.Received, PayloadLen-1)
	}
}

// TestRejectedRepliesDoNotHoldATunnelUp is issue case (c) in miniature: the
// far end dies, and an off-path attacker answers every keepalive with what
// it can make: payload-less Cisco-style replies, payloads under its own key,
// truncated ones, and a genuine reply it captured while the tunnel was
// healthy. The tunnel still goes down and stays down.
func TestRejectedRepliesDoNotHoldATunnelUp(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second, Retries: 3})
	captured, _ := h.keepalive()
	h.now = h.now.Add(rtt)
	if v, _ := h.m.Reply(h.now, captured); v != Accepted {
		t.Fatalf("genuine reply: %v", v)
	}
	evil := otherMachine(t)
	for i := 0; i < 10; i++ {
		p, _ := h.keepalive()
		var forged [InnerLen]byte
		evil.BuildInner(forged[:], local, remote, h.now)
		for _, bad := range [][]byte{
			nil,                                      // Cisco-style, no payload
			forged[IPv4HeaderLen+GREHeaderLen:],      // right format, wrong key
			append([]byte(nil), p[:PayloadLen-1]...), // truncated
			captured,                                 // replayed, later stale
		} {
			if v, ev := h.m.Reply(h.now.Add(rtt), bad); v == Accepted || ev.Changed() {
				t.Fatalf("keepalive %d: attacker's reply %v, event %v", i, v, ev)
			}
		}
	}
	s := h.m.Snapshot(h.now)
	if s.State != Down {
		t.Errorf("state %v, want down", s.State)
	}
	if s.Received != 1 || s.RejectedForged != 30 || s.RejectedStale != 10 || s.Rejected != 40 {
		t.Errorf("received %d forged %d stale %d rejected %d, want 1, 30, 10, 40",
			s.Received, s.RejectedForged, s.RejectedStale, s.Rejected)
	}
}

func TestSnapshot(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second, Retries: 2, DampInitial: 2, DampDecay: time.Hour})
	s := h.m.Snapshot(t0)
	if !s.LastReply.IsZero() || s.LastReplyAge != 0 || s.State != Up || s.Required != 2 {
		t.Errorf("fresh snapshot %+v", s)
	}
	if got, want := s.String(), "up, no reply yet, sent 0 received 0 rejected 0 (forged 0, stale 0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	p, _ := h.keepalive()       // t0
	h.m.Reply(t0.Add(rtt), p)   // accepted
	h.m.Reply(t0.Add(rtt), p)   // replayed
	h.m.Reply(t0.Add(rtt), nil) // forged
	h.run("xxx")                // t0+1s, +2s: unanswered; +3s: down
	h.run("k")                  // t0+4s: hold 1 of 2

	now := h.now.Add(500 * time.Millisecond)
	got := h.m.Snapshot(now)
	want := Snapshot{
		State:          Hold,
		Since:          t0.Add(4*time.Second + rtt),
		Period:         time.Second,
		Retries:        2,
		Unanswered:     0,
		Sent:           5,
		Received:       2,
		Rejected:       2,
		RejectedForged: 1,
		RejectedStale:  1,
		LastReply:      t0.Add(4*time.Second + rtt),
		LastReplyAge:   500 * time.Millisecond,
		LastRTT:        rtt,
		Good:           1,
		Required:       2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if got, want := got.String(), "hold (1 of 2 good replies), last reply 500ms ago, sent 5 received 2 rejected 2 (forged 1, stale 1)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// The count restarts when the next keepalive is due and the last one
	// is still unanswered.
	h.run("x")
	if s := h.m.Snapshot(h.now); s.Unanswered != 1 || s.Good != 1 {
		t.Errorf("keepalive out in hold: unanswered %d good %d, want 1 and 1", s.Unanswered, s.Good)
	}
	h.run("x")
	if s := h.m.Snapshot(h.now); s.Unanswered != 2 || s.Good != 0 || s.State != Hold {
		t.Errorf("after a lost keepalive in hold: %v unanswered %d good %d, want hold, 2 and 0", s.State, s.Unanswered, s.Good)
	}
}

// TestConcurrentUse runs the engine's two sides at once, as the engine
// does: a timer side ticking, building and sending, and a receive side
// judging replies and reading snapshots. Run with -race.
func TestConcurrentUse(t *testing.T) {
	m, err := New(Config{Period: MinPeriod}, t0)
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan []byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range replies {
			m.Reply(t0.Add(time.Second), p)
			m.Snapshot(t0.Add(time.Second))
			m.State()
		}
	}()
	now := t0
	for i := 0; i < 500; i++ {
		now = now.Add(MinPeriod)
		if m.Tick(now) {
			var buf [InnerLen]byte
			m.BuildInner(buf[:], local, remote, now)
			m.Sent(now)
			replies <- buf[IPv4HeaderLen+GREHeaderLen:]
		}
	}
	close(replies)
	<-done
	if s := m.Snapshot(now); s.Sent != 500 || s.Received+s.Rejected != 500 {
		t.Errorf("sent %d, judged %d, want 500 and 500", s.Sent, s.Received+s.Rejected)
	}
}

func TestEventAndVerdictStrings(t *testing.T) {
	if got := (Event{}).String(); got != "no change" || (Event{}).Changed() {
		t.Errorf("zero Event: %q changed=%v", got, (Event{}).Changed())
	}
	for v := Accepted; v <= RejectedReplayed; v++ {
		if s := v.String(); strings.HasPrefix(s, "verdict(") {
			t.Errorf("verdict %d has no name", v)
		}
		if n := btoi(v == Accepted) + btoi(v.Forged()) + btoi(v.Stale()); n != 1 {
			t.Errorf("verdict %v is in %d of accepted/forged/stale", v, n)
		}
	}
	if s := Verdict(0).String(); s != "verdict(0)" {
		t.Errorf("Verdict(0) = %q", s)
	}
	if s := State(0).String(); s != "state(0)" {
		t.Errorf("State(0) = %q", s)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestContinue: a machine made for a new period carries on the old one's
// state: a tunnel that is down stays down, its flap damping still asks for
// as many good replies, the counters go on, and a reply to a keepalive the
// old machine sent is accepted once and only once.
func TestContinue(t *testing.T) {
	h := newHarness(t, Config{Period: time.Second, Retries: 3, DampDecay: time.Hour})
	for range 3 {
		h.flapUntilUp() // needs 1, 2, then 4: the next down will need 8
	}
	h.run("xxxx")
	if h.m.State() != Down {
		t.Fatalf("state %v after four lost keepalives", h.m.State())
	}
	inFlight, _ := h.keepalive()
	before := h.m.Snapshot(h.now)

	m, err := New(Config{Period: 2 * time.Second, Retries: 5, DampDecay: time.Hour}, h.now)
	if err != nil {
		t.Fatal(err)
	}
	m.Continue(h.m, h.now)
	h.m = m
	after := m.Snapshot(h.now)
	if after.State != Down || after.Since != before.Since || after.Sent != before.Sent || after.Unanswered != before.Unanswered {
		t.Errorf("after Continue: %+v, was %+v", after, before)
	}
	if d := m.NextDeadline(); d.After(h.now.Add(2 * time.Second)) {
		t.Errorf("next keepalive due %v after now, want within the new period", d.Sub(h.now))
	}
	h.now = h.now.Add(rtt)
	if v, _ := m.Reply(h.now, inFlight); v != Accepted {
		t.Errorf("reply to the old machine's keepalive: %v", v)
	}
	if v, _ := m.Reply(h.now, inFlight); v != RejectedReplayed {
		t.Errorf("the same reply again: %v", v)
	}
	n := 1 // the reply above was the first good one
	for m.State() != Up && n <= MaxDamp {
		h.run("k")
		n++
	}
	if n != 8 {
		t.Errorf("came up after %d good replies, want the 8 flap damping asked for", n)
	}
}

// TestLastRTT: a reply's round trip is measured from the timestamp it
// carries, and kept across Continue.
func TestLastRTT(t *testing.T) {
	h := newHarness(t, Config{Period: 10 * time.Second, Retries: 3})
	if got := h.m.Snapshot(h.now).LastRTT; got != 0 {
		t.Fatalf("LastRTT before any reply = %v, want 0", got)
	}
	p, _ := h.keepalive()
	h.now = h.now.Add(37 * time.Millisecond)
	if v, _ := h.m.Reply(h.now, p); v != Accepted {
		t.Fatalf("reply %v", v)
	}
	if got := h.m.Snapshot(h.now.Add(time.Second)).LastRTT; got != 37*time.Millisecond {
		t.Errorf("LastRTT = %v, want 37ms", got)
	}
	m, err := New(Config{Period: 5 * time.Second, Retries: 3}, h.now)
	if err != nil {
		t.Fatal(err)
	}
	m.Continue(h.m, h.now)
	if got := m.Snapshot(h.now).LastRTT; got != 37*time.Millisecond {
		t.Errorf("LastRTT after Continue = %v, want 37ms", got)
	}
}
