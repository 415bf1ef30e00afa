package tunnel

import "time"

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
