package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// tracker counts work in flight so that shutdown can wait for it. Unlike a
// sync.WaitGroup it may be added to while a wait is running, and once
// closed it refuses new work, which the caller then does inline.
type tracker struct {
	mu     sync.Mutex
	n      int
	count  atomic.Int64 // n, read without the lock
	closed bool
	idle   *sync.Cond
}

func newTracker() *tracker {
	t := &tracker{}
	t.idle = sync.NewCond(&t.mu)
	return t
}

// start counts one piece of work; false once the tracker is closed.
func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	t.count.Add(1)
	return true
}

// done ends one piece of work that start counted.
func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	t.count.Add(-1)
	if t.n == 0 {
		t.idle.Broadcast()
	}
}

// pending is how much work is in flight.
func (t *tracker) pending() int64 { return t.count.Load() }

// goOrRun runs f in the background, counted, or inline once closed.
func (t *tracker) goOrRun(f func()) {
	if !t.start() {
		f()
		return
	}
	go func() {
		defer t.done()
		f()
	}()
}

// wait waits until nothing is in flight or the timeout passes, and
// reports whether everything finished. With refuse, new work is refused
// from now on.
func (t *tracker) wait(timeout time.Duration, refuse bool) bool {
	t.mu.Lock()
	if refuse {
		t.closed = true
	}
	t.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		t.mu.Lock()
		for t.n > 0 {
			t.idle.Wait()
		}
		t.mu.Unlock()
		close(finished)
	}()
	select {
	case <-finished:
		return true
	case <-time.After(timeout):
		return false
	}
}
