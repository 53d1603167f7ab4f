package quota

import (
	"sync"
	"time"
)

// BreakerState is the state of the store's circuit breaker.
type BreakerState string

// Breaker states.
const (
	// BreakerClosed: every call goes to the store.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen: calls fail at once with ErrStore, for OpenFor.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen: OpenFor has passed; one call at a time (the probe)
	// goes to the store, the others still fail at once.
	BreakerHalfOpen BreakerState = "half_open"
)

// BreakerOptions configure the circuit breaker in front of the store. The
// zero value is the defaults.
//
// The breaker opens on an error rate, not on one error: when, within the
// rolling Window, at least MinCalls calls ended and at least FailureRatio
// of them failed; or when every call has failed for at least FailingFor
// (the latest failure came FailingFor or more after the first of an
// unbroken run of failures), which catches a dead store at low traffic.
// Open, it fails calls at once for OpenFor; then it lets one probe
// through at a time: a success closes it (with an empty window), a
// failure opens it for another OpenFor.
//
// With the defaults (1 s window of 10 buckets, 20 calls, 50 %, 1 s of
// unbroken failures, open for 1 s), at 100 calls/s:
//
//   - a store that dies under steady traffic opens it once the failures
//     in the window equal the successes still in it: after about half the
//     window, 0.5 s (measured against a real Redis, killed or stopped
//     under a 100 ms timeout: 0.44 to 0.55 s, 45 to 49 failed calls);
//   - a store that is dead from the first call (an empty window) opens it
//     on the 20th failure, about 190 ms after the first; failures count
//     when they end, so a store that hangs adds one timeout to that;
//   - at under 20 calls/s the rate never counts, and the breaker opens on
//     the first failure that ends 1 s or more after the first of the run:
//     within 1 s plus one gap between calls;
//   - a 150 ms stall leaves it closed: about 15 calls time out of about
//     100 in the window (15 %), and their run spans about 150 ms (measured
//     with a 100 ms timeout: 5 calls failed, the rest waited it out);
//   - it closes at the first probe after the store is back: OpenFor after
//     it opened or after the last failed probe, at the next call, plus
//     that call's round trip; so between one round trip and OpenFor plus
//     one gap between calls after the store is back (measured: 0.40 to
//     0.62 s). While the store stays down, one call per OpenFor (the
//     probe) waits on it, the others fail at once.
type BreakerOptions struct {
	// Window is how far back the error rate looks. Zero: 1 second.
	Window time.Duration
	// Buckets is how many slices the window rolls by (the window is
	// Window/Buckets coarse). Zero: 10.
	Buckets int
	// MinCalls is how many calls the window needs before its error rate
	// counts. Zero: 20.
	MinCalls int
	// FailureRatio is the share of failed calls in the window that opens
	// the breaker. Zero: 0.5; above 1 the rate never opens it.
	FailureRatio float64
	// FailingFor is how long an unbroken run of failures opens the
	// breaker whatever the rate. Zero: Window; negative: never.
	FailingFor time.Duration
	// OpenFor is how long the open breaker fails calls at once before it
	// lets a probe through. It is also how long a probe may take: one
	// still running after OpenFor is given up and the next call probes.
	// Zero: 1 second.
	OpenFor time.Duration
	// Clock is a monotonic clock: the time since any fixed origin. Nil
	// means the process's monotonic clock (tests inject one).
	Clock func() time.Duration
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.Buckets <= 0 {
		o.Buckets = 10
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 20
	}
	if o.FailureRatio <= 0 {
		o.FailureRatio = 0.5
	}
	if o.FailingFor == 0 {
		o.FailingFor = o.Window
	}
	if o.OpenFor <= 0 {
		o.OpenFor = time.Second
	}
	if o.Clock == nil {
		start := time.Now()
		o.Clock = func() time.Duration { return time.Since(start) }
	}
	return o
}

// breaker is the circuit breaker; safe for concurrent use. A caller asks
// allow before a call and, when let through, reports the call's outcome
// to done with what allow returned.
type breaker struct {
	o     BreakerOptions
	width time.Duration // of a bucket

	mu      sync.Mutex
	buckets []bucket
	// running: the calls since runStart have all failed.
	running  bool
	runStart time.Duration
	open     bool
	// openUntil is when an open breaker lets a probe through.
	openUntil time.Duration
	// probe is the probe in flight (0: none), since probeAt.
	probe   uint64
	probeAt time.Duration
	seq     uint64
	// lastFailed: the last call that reached the store failed.
	lastFailed bool
}

type bucket struct {
	idx             int64 // which width-long slice of time it counts
	calls, failures int
}

func newBreaker(o BreakerOptions) *breaker {
	o = o.withDefaults()
	return &breaker{o: o, width: max(o.Window/time.Duration(o.Buckets), 1), buckets: make([]bucket, o.Buckets)}
}

// allow says whether a call may go to the store. probe is non-zero when
// the call is the half-open breaker's probe.
func (b *breaker) allow() (probe uint64, ok bool) {
	now := b.o.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return 0, true
	}
	if now < b.openUntil || (b.probe != 0 && now-b.probeAt < b.o.OpenFor) {
		return 0, false
	}
	b.seq++
	b.probe, b.probeAt = b.seq, now
	return b.probe, true
}

// done records the outcome of a call allow let through.
func (b *breaker) done(probe uint64, failed bool) {
	now := b.o.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe != 0 {
		if !b.open || probe != b.probe {
			return // given up on: a later probe decides
		}
		b.probe = 0
		b.lastFailed = failed
		if failed {
			b.openUntil = now + b.o.OpenFor
			return
		}
		b.open, b.running = false, false
		clear(b.buckets)
		return
	}
	if b.open {
		return // began before the breaker opened: the probe decides
	}
	b.lastFailed = failed
	bk := b.bucket(now)
	bk.calls++
	if !failed {
		b.running = false
		return
	}
	bk.failures++
	if !b.running {
		b.running, b.runStart = true, now
	}
	calls, failures := b.window(now)
	if (b.o.FailingFor > 0 && now-b.runStart >= b.o.FailingFor) ||
		(calls >= b.o.MinCalls && float64(failures) >= b.o.FailureRatio*float64(calls)) {
		b.open, b.openUntil, b.probe = true, now+b.o.OpenFor, 0
	}
}

// bucket is the bucket counting now, emptied when it last counted an
// older slice of time.
func (b *breaker) bucket(now time.Duration) *bucket {
	idx := int64(now / b.width)
	n := int64(len(b.buckets))
	bk := &b.buckets[((idx%n)+n)%n]
	if bk.idx != idx {
		*bk = bucket{idx: idx}
	}
	return bk
}

// window sums the buckets of the window that ends now.
func (b *breaker) window(now time.Duration) (calls, failures int) {
	idx := int64(now / b.width)
	n := int64(len(b.buckets))
	for _, bk := range b.buckets {
		if bk.idx <= idx && bk.idx > idx-n {
			calls += bk.calls
			failures += bk.failures
		}
	}
	return calls, failures
}

// breakerStatus is the breaker as Status reports it.
type breakerStatus struct {
	state           BreakerState
	calls, failures int
	degraded        bool
}

func (b *breaker) status() breakerStatus {
	now := b.o.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	st := breakerStatus{state: BreakerClosed, degraded: b.open || b.lastFailed}
	switch {
	case b.open && now < b.openUntil:
		st.state = BreakerOpen
	case b.open:
		st.state = BreakerHalfOpen
	}
	st.calls, st.failures = b.window(now)
	return st
}
