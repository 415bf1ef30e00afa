package tunnel

import (
	"time"

	"github.com/gretun/gretun/keepalive"
)

// The reflection rate limit, for tests that check the bound it keeps.
const (
	ReflectEvery = reflectEvery
	ReflectBurst = reflectBurst
)

// CreateStack is SystemEnv's netstack device, which needs no privilege.
var CreateStack = createStack

// AgeLearned makes the named multipoint tunnel's learned neighbours look
// idle for d longer, as if time had passed.
func AgeLearned(e *Engine, name string, d time.Duration) {
	e.mu.Lock()
	t := e.tunnels[name]
	e.mu.Unlock()
	nb := t.nb
	nb.mu.Lock()
	defer nb.mu.Unlock()
	for _, en := range nb.learned {
		en.seen.Add(-int64(d))
	}
	for _, p := range nb.peers {
		p.seen.Add(-int64(d))
	}
}

// LearnTTL is how long a learned neighbour lasts without traffic.
const LearnTTL = learnTTL

// ReplyOvertakesDown drives the named tunnel's keepalive machine (whose
// keepalive goroutine must be idle: a long period) down by a keepalive
// sent after Retries unanswered, and up again by that keepalive's reply,
// and has the engine act on the two changes in the other order, as the
// receiving goroutine does when it overtakes the keepalive goroutine
// between Sent and its carrier change. It returns the two events.
func ReplyOvertakesDown(e *Engine, name string) (down, up keepalive.Event) {
	e.mu.Lock()
	p := e.tunnels[name].peer
	e.mu.Unlock()
	m := p.ka.Load()
	c := p.t.cfg.Load()
	now := time.Now()
	for m.Snapshot(now).Unanswered < c.KeepaliveRetries {
		p.logEvent(m.Sent(now))
	}
	buf := make([]byte, keepalive.InnerLen)
	n := m.BuildInner(buf, c.Local, c.Remote, now)
	down = m.Sent(now)
	_, up = m.Reply(now, buf[n-keepalive.PayloadLen:n])
	p.logEvent(up)
	p.logEvent(down)
	return down, up
}
