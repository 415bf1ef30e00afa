package pmtu

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// allowed counts how many of n calls at now are allowed.
func allowed(l *Limiter, now time.Time, n int) int {
	c := 0
	for range n {
		if l.Allow(now) {
			c++
		}
	}
	return c
}

func TestLimiterDefaults(t *testing.T) {
	var l Limiter
	if got := allowed(&l, t0, 1000); got != DefaultBurst {
		t.Fatalf("burst at one instant: %d allowed, want %d", got, DefaultBurst)
	}
	// Just under one interval later nothing new; at one interval, one.
	if l.Allow(t0.Add(DefaultEvery - 1)) {
		t.Errorf("allowed before a token was due")
	}
	if !l.Allow(t0.Add(DefaultEvery)) {
		t.Errorf("not allowed once a token was due")
	}
	if l.Allow(t0.Add(DefaultEvery)) {
		t.Errorf("two allowed for one token")
	}
	// A second's steady offered load of 10 per ms gets 1 per ms.
	now := t0.Add(DefaultEvery)
	got := 0
	for range 1000 {
		now = now.Add(DefaultEvery)
		got += allowed(&l, now, 10)
	}
	if got != 1000 {
		t.Errorf("steady state: %d allowed in 1000 intervals, want 1000", got)
	}
	// After a long quiet spell the bucket is full again, not fuller.
	if got := allowed(&l, now.Add(time.Hour), 1000); got != DefaultBurst {
		t.Errorf("after an hour: %d allowed, want %d", got, DefaultBurst)
	}
}

func TestLimiterSetLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		every         time.Duration
		burst         int
		at0, at1, at5 int // allowed of 100 calls at t0, t0+1s, then t0+6s
	}{
		{"1 per second, burst 1 (Linux icmp_ratelimit)", time.Second, 1, 1, 1, 1},
		{"10 per second, burst 50", 100 * time.Millisecond, 50, 50, 10, 50},
		{"burst 0 counts as 1", time.Second, 0, 1, 1, 1},
		{"2 per second, burst 3", 500 * time.Millisecond, 3, 3, 2, 3},
		{"no limit", 0, 0, 100, 100, 100},
		{"huge burst saturates", 24 * time.Hour, 1 << 40, 100, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Limiter
			l.SetLimit(tc.every, tc.burst)
			got := [3]int{allowed(&l, t0, 100), allowed(&l, t0.Add(time.Second), 100), allowed(&l, t0.Add(6*time.Second), 100)}
			if want := [3]int{tc.at0, tc.at1, tc.at5}; got != want {
				t.Errorf("allowed %v, want %v", got, want)
			}
		})
	}
}

// A clock that steps back withholds tokens but recovers.
func TestLimiterClockBack(t *testing.T) {
	var l Limiter
	l.SetLimit(time.Second, 1)
	if !l.Allow(t0) {
		t.Fatal("first not allowed")
	}
	if l.Allow(t0.Add(-time.Minute)) {
		t.Errorf("allowed after the clock stepped back")
	}
	if !l.Allow(t0.Add(time.Second)) {
		t.Errorf("not allowed once the clock caught up")
	}
}

// Concurrent callers never get more than the bucket holds (run with -race).
func TestLimiterConcurrent(t *testing.T) {
	var l Limiter
	l.SetLimit(time.Second, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := allowed(&l, t0, 50)
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 100 {
		t.Errorf("%d allowed by 8×50 concurrent calls, want 100", total)
	}
}
