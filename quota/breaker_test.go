package quota

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// monoClock is a settable monotonic clock.
type monoClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *monoClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d
}

func (c *monoClock) Set(d time.Duration) {
	c.mu.Lock()
	c.d = d
	c.mu.Unlock()
}

func (c *monoClock) Add(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

func testBreaker(o BreakerOptions) (*breaker, *monoClock) {
	clk := &monoClock{}
	o.Clock = clk.Now
	return newBreaker(o), clk
}

// call is one store call at time at that fails or not.
type call struct {
	at   time.Duration
	fail bool
}

// every is n calls, one each gap from start, failing where fail says.
func every(start, gap time.Duration, n int, fail func(i int) bool) []call {
	out := make([]call, n)
	for i := range out {
		out[i] = call{at: start + time.Duration(i)*gap, fail: fail(i)}
	}
	return out
}

func always(int) bool { return true }
func never(int) bool  { return false }
func odd(i int) bool  { return i%2 == 1 }
func between(a, b int) func(int) bool {
	return func(i int) bool { return i >= a && i < b }
}

// trips runs calls through b and returns the index of the call after
// which the breaker opened, or -1. Every call must be let through until
// then.
func trips(t *testing.T, b *breaker, clk *monoClock, calls []call) int {
	t.Helper()
	for i, c := range calls {
		clk.Set(c.at)
		probe, ok := b.allow()
		require.True(t, ok, "call %d refused while closed", i)
		require.Zero(t, probe, "call %d is a probe while closed", i)
		b.done(probe, c.fail)
		if b.status().state != BreakerClosed {
			return i
		}
	}
	return -1
}

func concat(parts ...[]call) []call {
	var out []call
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestBreakerOpens(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		calls []call
		// opensAt is the index of the call that opens it; -1: never.
		opensAt int
	}{
		{"half of 20 calls fail", every(0, 10*ms, 20, odd), 19},
		{"half of 40 calls fail", every(0, 10*ms, 40, odd), 19},
		{"9 of 20 fail", every(0, 10*ms, 20, func(i int) bool { return i%2 == 1 && i != 19 }), -1},
		// A 150 ms stall at 100 calls/s: 15 calls time out in a row.
		{"15 of 100 fail in a row", every(0, 10*ms, 200, between(40, 55)), -1},
		// A dead store at 100 calls/s opens it on the 20th call.
		{"dead store at 100 calls/s", every(0, 10*ms, 100, always), 19},
		// A store that dies under steady traffic: the failures must
		// catch up with the successes still in the window. The 50th
		// failure, 490 ms after the first, meets 50 successes.
		{"dies under 100 calls/s", every(0, 10*ms, 300, func(i int) bool { return i >= 100 }), 100 + 49},
		{"19 failures are below MinCalls", every(0, 10*ms, 19, always), -1},
		{"one more is not", every(0, 10*ms, 20, always), 19},
		// At 4 calls/s the rate never counts; failures for a whole
		// second do.
		{"dead store at 4 calls/s", every(0, 250*ms, 10, always), 4},
		{"a success breaks the run", every(0, 250*ms, 10, func(i int) bool { return i != 2 }), 7},
		{"healthy store", every(0, ms, 3000, never), -1},
		// Failures older than the window no longer count: 10 failures,
		// a success 1 s later, 10 more failures 500 ms after it: 11
		// calls in the window, below MinCalls.
		{"failures leave the window", concat(every(0, 10*ms, 10, always), []call{{at: time.Second}}, every(1500*ms, 10*ms, 10, always)), -1},
		// The same calls within one window open it, at 19 failures of 20
		// calls.
		{"failures in one window", concat(every(0, 10*ms, 10, always), []call{{at: 200 * ms}}, every(300*ms, 10*ms, 10, always)), 19},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := testBreaker(BreakerOptions{})
			assert.Equal(t, tc.opensAt, trips(t, b, clk, tc.calls))
		})
	}
}

func TestBreakerOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		o := BreakerOptions{}.withDefaults()
		assert.Equal(t, time.Second, o.Window)
		assert.Equal(t, 10, o.Buckets)
		assert.Equal(t, 20, o.MinCalls)
		assert.InDelta(t, 0.5, o.FailureRatio, 0)
		assert.Equal(t, time.Second, o.FailingFor)
		assert.Equal(t, time.Second, o.OpenFor)
		require.NotNil(t, o.Clock)
		assert.GreaterOrEqual(t, o.Clock(), time.Duration(0))
	})
	t.Run("FailingFor follows Window", func(t *testing.T) {
		assert.Equal(t, 3*time.Second, BreakerOptions{Window: 3 * time.Second}.withDefaults().FailingFor)
	})
	t.Run("negative FailingFor never opens on a run", func(t *testing.T) {
		b, clk := testBreaker(BreakerOptions{FailingFor: -1})
		assert.Equal(t, -1, trips(t, b, clk, every(0, 250*time.Millisecond, 40, always)))
	})
	t.Run("a ratio over 1 never opens on the rate", func(t *testing.T) {
		b, clk := testBreaker(BreakerOptions{FailureRatio: 1.1, FailingFor: -1})
		assert.Equal(t, -1, trips(t, b, clk, every(0, time.Millisecond, 500, always)))
	})
	t.Run("MinCalls and ratio", func(t *testing.T) {
		b, clk := testBreaker(BreakerOptions{MinCalls: 4, FailureRatio: 0.75})
		// ok fail fail fail: 3 of 4.
		assert.Equal(t, 3, trips(t, b, clk, every(0, time.Millisecond, 10, func(i int) bool { return i > 0 })))
	})
}

// open trips b with a dead store at 100 calls/s and returns when.
func open(t *testing.T, b *breaker, clk *monoClock) time.Duration {
	t.Helper()
	start := clk.Now()
	require.NotEqual(t, -1, trips(t, b, clk, every(start+10*time.Millisecond, 10*time.Millisecond, 20, always)))
	return clk.Now()
}

func TestBreakerHalfOpen(t *testing.T) {
	b, clk := testBreaker(BreakerOptions{})
	opened := open(t, b, clk)
	st := b.status()
	assert.Equal(t, BreakerOpen, st.state)
	assert.True(t, st.degraded)
	assert.Equal(t, 20, st.calls)
	assert.Equal(t, 20, st.failures)

	// Open: every call fails at once, until OpenFor has passed.
	clk.Set(opened + time.Second - time.Nanosecond)
	_, ok := b.allow()
	assert.False(t, ok)
	assert.Equal(t, BreakerOpen, b.status().state)

	// Half-open: one probe; the others still fail at once.
	clk.Set(opened + time.Second)
	assert.Equal(t, BreakerHalfOpen, b.status().state)
	probe, ok := b.allow()
	require.True(t, ok)
	require.NotZero(t, probe)
	for range 5 {
		p, ok := b.allow()
		assert.False(t, ok, "a second call while the probe is out")
		assert.Zero(t, p)
	}
	assert.Equal(t, BreakerHalfOpen, b.status().state)

	// The probe succeeds: closed, with an empty window.
	b.done(probe, false)
	st = b.status()
	assert.Equal(t, BreakerClosed, st.state)
	assert.False(t, st.degraded)
	assert.Zero(t, st.calls)
	assert.Zero(t, st.failures)
	p, ok := b.allow()
	assert.True(t, ok)
	assert.Zero(t, p)
	b.done(p, false)

	// The window starts afresh: with that success, 19 more failures (of
	// 20 calls) open it.
	assert.Equal(t, 18, trips(t, b, clk, every(clk.Now()+time.Millisecond, 10*time.Millisecond, 30, always)))
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	b, clk := testBreaker(BreakerOptions{OpenFor: 500 * time.Millisecond})
	opened := open(t, b, clk)
	clk.Set(opened + 500*time.Millisecond)
	probe, ok := b.allow()
	require.True(t, ok)
	clk.Add(100 * time.Millisecond) // the probe's round trip
	b.done(probe, true)
	failedAt := clk.Now()
	assert.Equal(t, BreakerOpen, b.status().state)

	// Open for another OpenFor from the failed probe.
	clk.Set(failedAt + 499*time.Millisecond)
	_, ok = b.allow()
	assert.False(t, ok)
	clk.Set(failedAt + 500*time.Millisecond)
	probe2, ok := b.allow()
	require.True(t, ok)
	assert.NotEqual(t, probe, probe2)
	b.done(probe2, false)
	assert.Equal(t, BreakerClosed, b.status().state)
}

// Calls let through before the breaker opened do not decide once it has:
// only the probe does.
func TestBreakerLateResults(t *testing.T) {
	b, clk := testBreaker(BreakerOptions{})
	early, ok := b.allow()
	require.True(t, ok)
	opened := open(t, b, clk)
	b.done(early, false)
	assert.Equal(t, BreakerOpen, b.status().state, "a late success does not close it")
	clk.Set(opened + time.Second)
	probe, ok := b.allow()
	require.True(t, ok)
	b.done(early, false)
	assert.Equal(t, BreakerHalfOpen, b.status().state)
	b.done(probe, false)
	assert.Equal(t, BreakerClosed, b.status().state)
}

// A probe that does not come back within OpenFor is given up: the next
// call probes, and the lost one's late answer is ignored.
func TestBreakerLostProbe(t *testing.T) {
	b, clk := testBreaker(BreakerOptions{})
	opened := open(t, b, clk)
	clk.Set(opened + time.Second)
	lost, ok := b.allow()
	require.True(t, ok)
	clk.Add(time.Second - time.Nanosecond)
	_, ok = b.allow()
	assert.False(t, ok, "the probe is still given time")
	clk.Add(time.Nanosecond)
	probe, ok := b.allow()
	require.True(t, ok, "the lost probe is given up")
	b.done(lost, false)
	assert.Equal(t, BreakerHalfOpen, b.status().state, "the lost probe's answer is ignored")
	b.done(probe, true)
	assert.Equal(t, BreakerOpen, b.status().state)
}

func TestBreakerDegraded(t *testing.T) {
	b, _ := testBreaker(BreakerOptions{})
	assert.False(t, b.status().degraded)
	p, _ := b.allow()
	b.done(p, true)
	st := b.status()
	assert.Equal(t, BreakerClosed, st.state)
	assert.True(t, st.degraded, "the last call failed")
	assert.Equal(t, 1, st.calls)
	assert.Equal(t, 1, st.failures)
	p, _ = b.allow()
	b.done(p, false)
	assert.False(t, b.status().degraded)
}

// Many callers at once: exactly one probe is let through, and the state
// stays consistent under the race detector.
func TestBreakerConcurrent(t *testing.T) {
	t.Run("one probe", func(t *testing.T) {
		b, clk := testBreaker(BreakerOptions{})
		opened := open(t, b, clk)
		clk.Set(opened + time.Second)
		var probes, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 64 {
			wg.Go(func() {
				<-start
				p, ok := b.allow()
				switch {
				case ok && p != 0:
					probes.Add(1)
				case !ok:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		assert.EqualValues(t, 1, probes.Load())
		assert.EqualValues(t, 63, refused.Load())
	})
	// The store is down for 100 ms, up for 100 ms, and so on, while 16
	// callers call and the clock moves: the breaker opens, probes and
	// closes again and again.
	t.Run("flapping store", func(t *testing.T) {
		b, clk := testBreaker(BreakerOptions{OpenFor: 20 * time.Millisecond})
		down := func() bool { return clk.Now()/(100*time.Millisecond)%2 == 0 }
		var wg sync.WaitGroup
		var refused, probes, closes atomic.Int64
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range 2000 {
					if r.IntN(8) == 0 {
						clk.Add(time.Millisecond)
					}
					p, ok := b.allow()
					if !ok {
						refused.Add(1)
						continue
					}
					failed := down()
					b.done(p, failed)
					if p != 0 {
						probes.Add(1)
						if !failed {
							closes.Add(1)
						}
					}
					st := b.status()
					assert.LessOrEqual(t, st.failures, st.calls)
				}
			})
		}
		wg.Wait()
		assert.Positive(t, refused.Load(), "it opened")
		assert.Positive(t, probes.Load(), "it went half-open")
		assert.Positive(t, closes.Load(), "a probe closed it")
	})
}
