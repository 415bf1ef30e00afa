package tunnel

import (
	"sync"
	"time"
)

// txPool lends sending batches (a TUN read's worth of buffers, about 75 KB
// at MTU 1476) to the tunnels that are sending. A tunnel borrows them when
// packets arrive and gives them back once it is idle, so that ten thousand
// idle tunnels hold none; batches nobody borrows again are freed by the
// garbage collector.
var txPool = sync.Pool{New: func() any { return new(txBatch) }}

// idleAfter is how long a tunnel's device may have nothing to read before
// the tunnel gives its batches back.
const idleAfter = 10 * time.Millisecond

// txBatches is a reading goroutine's account of the batches it borrowed:
// at most txPipeline, each either in free or with the sending goroutine.
type txBatches struct {
	free chan *txBatch
	out  int
}

// get returns a free batch, borrowing one while fewer than txPipeline are
// out, else waiting for the sender to give one back.
func (p *txBatches) get() *txBatch {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.out < txPipeline {
		p.out++
		return txPool.Get().(*txBatch)
	}
	return <-p.free
}

// release gives every batch back to the pool, waiting for the sender to
// be done with those it holds.
func (p *txBatches) release() {
	for ; p.out > 0; p.out-- {
		txPool.Put(<-p.free)
	}
}
