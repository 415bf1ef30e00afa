package stackdev

import (
	"io"
	"sync"
)

// group is the listeners and connections a device's services hold, closed
// together with the device, and the goroutines serving them.
type group struct {
	mu     sync.Mutex
	open   map[io.Closer]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add holds c until remove or closeAll; false (and c closed) once the
// group is closed.
func (g *group) add(c io.Closer) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return false
	}
	if g.open == nil {
		g.open = map[io.Closer]struct{}{}
	}
	g.open[c] = struct{}{}
	return true
}

func (g *group) remove(c io.Closer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.open, c)
}

// goClose runs fn on a goroutine of the group and closes c after it.
func (g *group) goClose(c io.Closer, fn func()) {
	if !g.add(c) {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.remove(c)
		defer c.Close()
		fn()
	}()
}

// closeAll closes everything held and waits for the goroutines.
func (g *group) closeAll() {
	g.mu.Lock()
	g.closed = true
	for c := range g.open {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *group) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
