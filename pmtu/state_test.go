package pmtu

import (
	"testing"
	"time"
)

// GRE without options over a 1500-byte underlay: device 1476, overhead 24.
func newState() *State {
	var s State
	s.SetDevice(1476, 24)
	return &s
}

func TestStateLowerAndExpire(t *testing.T) {
	s := newState()
	if got := s.Effective(t0); got != 1476 {
		t.Fatalf("Effective before any report = %d, want 1476", got)
	}
	// A hop of 1400 in the underlay: the tunnel carries 1376.
	if !s.Lower(t0, 1400) {
		t.Errorf("Lower(1400) reported no change")
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{
		{0, 1376},
		{Expires - time.Nanosecond, 1376},
		{Expires, 1476}, // expired: try the device MTU again
		{Expires + time.Hour, 1476},
	} {
		if got := s.Effective(t0.Add(tc.at)); got != tc.want {
			t.Errorf("Effective(t0+%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
	if _, _, ok := s.Learnt(t0.Add(Expires)); ok {
		t.Errorf("Learnt still in force after Expires")
	}
	// Once expired, a new report of the same value lowers it again.
	if !s.Lower(t0.Add(Expires), 1400) || s.Effective(t0.Add(Expires)) != 1376 {
		t.Errorf("report after expiry not taken")
	}
}

func TestStateReports(t *testing.T) {
	s := newState()
	steps := []struct {
		at      time.Duration
		report  int
		changed bool
		want    int // Effective right after
	}{
		{0, 1500, false, 1476},                  // the device's own path MTU: nothing learnt
		{0, 1600, false, 1476},                  // larger than we send: ignored
		{time.Minute, 1450, true, 1426},         // lower
		{2 * time.Minute, 1480, false, 1426},    // higher than learnt: ignored
		{3 * time.Minute, 1300, true, 1276},     // lower again
		{9 * time.Minute, 1300, false, 1276},    // same: refreshes the expiry
		{12 * time.Minute, 0, false, 1276},      // learnt at 3 min, refreshed at 9
		{18 * time.Minute, 0, false, 1276},      // refreshed at 9 min: holds until 19
		{19 * time.Minute, 0, false, 1476},      // and expires at 19 minutes
		{20 * time.Minute, 100, true, 552 - 24}, // below min_pmtu: taken as 552
		{21 * time.Minute, 552, false, 528},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		if st.report != 0 {
			if got := s.Lower(now, st.report); got != st.changed {
				t.Errorf("t+%v Lower(%d) = %v, want %v", st.at, st.report, got, st.changed)
			}
		}
		if got := s.Effective(now); got != st.want {
			t.Errorf("t+%v after report %d: Effective = %d, want %d", st.at, st.report, got, st.want)
		}
	}
	mtu, exp, ok := s.Learnt(t0.Add(21 * time.Minute))
	if !ok || mtu != MinPathMTU || !exp.Equal(t0.Add(31*time.Minute)) {
		t.Errorf("Learnt = %d, %v, %v; want %d, t0+31m, true", mtu, exp, ok, MinPathMTU)
	}
}

// A learnt path MTU is about the underlay path, so it survives device
// MTU changes, and the smaller of the two wins.
func TestStateSetDevice(t *testing.T) {
	s := newState()
	s.Lower(t0, 1400)
	s.SetDevice(1300, 24)
	if got := s.Effective(t0); got != 1300 {
		t.Errorf("device 1300 under learnt 1376: Effective = %d, want 1300", got)
	}
	s.SetDevice(9000, 24)
	if got := s.Effective(t0); got != 1376 {
		t.Errorf("device 9000 over learnt 1376: Effective = %d, want 1376", got)
	}
	s.SetDevice(1476, 36) // GRE with key, checksum and sequence
	if got := s.Effective(t0); got != 1364 {
		t.Errorf("overhead 36: Effective = %d, want 1364", got)
	}
}

func TestReportedMTU(t *testing.T) {
	for _, tc := range []struct{ nextHop, sent, want int }{
		{1400, 1500, 1400}, // RFC 1191 router
		{0, 1500, 1492},    // old router: next plateau below 1500
		{0, 1492, 1006},
		{0, 576, 508},
		{0, 69, 68},
		{0, 68, 68}, // nothing below 68
		{0, 100000, 65535},
		{1500, 1500, 1492}, // not below what it refused: nonsense
		{67, 1500, 1492},   // below the IPv4 minimum: nonsense
		{68, 1500, 68},
	} {
		if got := ReportedMTU(tc.nextHop, tc.sent); got != tc.want {
			t.Errorf("ReportedMTU(%d, %d) = %d, want %d", tc.nextHop, tc.sent, got, tc.want)
		}
	}
}
