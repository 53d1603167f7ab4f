package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scriptStore records the checks it is given and answers as told.
type scriptStore struct {
	err      error
	admit    Admission
	reserved [][]Check
	settled  []map[string]int64
	// settledWith are the checks each Settle was given, and settledIDs
	// its id.
	settledWith [][]Check
	settledIDs  []string
	reservedIDs []string
	peeked      int
	pinged      int
}

var _ Store = (*scriptStore)(nil)

func (s *scriptStore) Reserve(_ context.Context, _, id string, checks []Check, _ time.Duration) (Admission, error) {
	s.reserved = append(s.reserved, checks)
	s.reservedIDs = append(s.reservedIDs, id)
	if s.err != nil {
		return Admission{}, s.err
	}
	a := s.admit
	if a.States == nil {
		for _, c := range checks {
			a.States = append(a.States, State{Key: c.Key, Metric: c.Metric, Limit: c.Limit, Remaining: c.Limit - c.Amount})
		}
	}
	return a, nil
}

func (s *scriptStore) Settle(_ context.Context, _, id string, checks []Check, actual map[string]int64) error {
	s.settled = append(s.settled, actual)
	s.settledWith = append(s.settledWith, checks)
	s.settledIDs = append(s.settledIDs, id)
	return s.err
}

func (s *scriptStore) Ping(context.Context) error {
	s.pinged++
	return s.err
}

func (s *scriptStore) Peek(_ context.Context, _ string, checks []Check) ([]State, error) {
	s.peeked++
	if s.err != nil {
		return nil, s.err
	}
	var out []State
	for _, c := range checks {
		out = append(out, State{Key: c.Key, Metric: c.Metric, Limit: c.Limit, Remaining: c.Limit / 2})
	}
	return out, nil
}

func (s *scriptStore) Reset(context.Context, string, []Check) error { return s.err }

var nov28 = func() time.Time { return time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC) }

func TestChecksPerScope(t *testing.T) {
	st := &scriptStore{admit: Admission{Allowed: true}}
	l := New(Options{Store: st, Now: nov28, Limits: []Limit{
		{Scope: ScopeKey, RequestsPerMinute: 60, TokensPerMinute: 1000},
		{Scope: ScopeTeam, ID: "search", MicroUSDPerDay: 5_000_000, MicroUSDPerMonth: 100_000_000},
		{Scope: ScopeTeam, ID: "other", RequestsPerDay: 1},
		{Scope: ScopeTenant, RequestsPerDay: 10_000},
	}})
	ticket, res := l.Admit(context.Background(), Subject{Tenant: "acme", Team: "search", Key: "k1"}, Amounts{Tokens: 300, MicroUSD: 1500})
	require.True(t, res.Allowed)
	require.NotNil(t, ticket)
	var got []Check
	for _, c := range st.reserved[0] {
		got = append(got, Check{Key: c.Key, Kind: c.Kind, Metric: c.Metric, Limit: c.Limit, Period: c.Period, Amount: c.Amount})
	}
	require.Equal(t, []Check{
		{Key: "key:k1:each:rpm", Kind: Rate, Metric: Requests, Limit: 60, Period: time.Minute, Amount: 1},
		{Key: "key:k1:each:tpm", Kind: Rate, Metric: Tokens, Limit: 1000, Period: time.Minute, Amount: 300},
		{Key: "team:search:usd-day:2026-11-28", Kind: Budget, Metric: USD, Limit: 5_000_000, Period: 48 * time.Hour, Amount: 1500},
		{Key: "team:search:usd-month:2026-11", Kind: Budget, Metric: USD, Limit: 100_000_000, Period: 62 * 24 * time.Hour, Amount: 1500},
		{Key: "tenant:acme:each:rpd", Kind: Rate, Metric: Requests, Limit: 10_000, Period: 24 * time.Hour, Amount: 1},
	}, got, "the other team's limit does not apply")

	require.NoError(t, ticket.Settle(context.Background(), Amounts{Tokens: 120, MicroUSD: 700}))
	require.NoError(t, ticket.Settle(context.Background(), Amounts{Tokens: 1, MicroUSD: 1}), "a second settle is a no-op")
	require.Equal(t, []map[string]int64{{
		"key:k1:each:rpm": 1, "key:k1:each:tpm": 120, "team:search:usd-day:2026-11-28": 700,
		"team:search:usd-month:2026-11": 700, "tenant:acme:each:rpd": 1,
	}}, st.settled)
}

func TestNoLimitsNoStore(t *testing.T) {
	st := &scriptStore{}
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeTeam, ID: "x", RequestsPerMinute: 1}}})
	ticket, res := l.Admit(context.Background(), Subject{Tenant: "a", Team: "y", Key: "k"}, Amounts{})
	require.True(t, res.Allowed)
	require.Nil(t, ticket)
	require.Empty(t, st.reserved)
	require.NoError(t, ticket.Settle(context.Background(), Amounts{}), "a nil ticket settles nothing")
}

func TestStoreFailureModes(t *testing.T) {
	down := fmt.Errorf("%w: connection refused", ErrStore)
	for _, tc := range []struct {
		modes   []Mode
		allowed bool
		local   bool
		mode    Mode
	}{
		{[]Mode{FailOpen}, true, false, FailOpen},
		{[]Mode{""}, true, false, FailOpen},
		{[]Mode{FailOpen, LocalOnly}, true, true, LocalOnly},
		{[]Mode{LocalOnly, FailClosed}, false, false, FailClosed},
	} {
		var limits []Limit
		for i, m := range tc.modes {
			scope := ScopeKey
			if i > 0 {
				scope = ScopeTeam
			}
			limits = append(limits, Limit{Scope: scope, RequestsPerMinute: 1, MicroUSDPerDay: 1000, OnStoreError: m})
		}
		st := &scriptStore{err: down}
		l := New(Options{Store: st, Limits: limits, Now: nov28})
		s := Subject{Tenant: "a", Team: "t", Key: "k"}
		require.Equal(t, tc.mode, l.Mode(s), "%v", tc.modes)
		ticket, res := l.Admit(context.Background(), s, Amounts{Tokens: 10, MicroUSD: 70})
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.Equal(t, tc.allowed, res.Allowed, "%v", tc.modes)
		require.Equal(t, tc.local, res.LocalOnly(), "%v", tc.modes)
		require.Equal(t, tc.mode, res.Mode)
		st0 := l.Status()
		require.True(t, st0.Degraded, "the last call failed")
		require.Equal(t, BreakerClosed, st0.Breaker, "one failure does not open the breaker")
		require.EqualValues(t, 1, st0.StoreErrors)
		require.Equal(t, 1, st0.WindowCalls)
		require.Equal(t, 1, st0.WindowFailures)
		if !tc.allowed {
			require.Nil(t, ticket)
			continue
		}

		// The admission is still counted: settled under the id it tried
		// to reserve, with checks that say nothing was reserved.
		require.NotNil(t, ticket)
		st.err = nil
		require.NoError(t, ticket.Settle(context.Background(), Amounts{Tokens: 12, MicroUSD: 90}))
		require.Equal(t, st.reservedIDs, st.settledIDs)
		require.Len(t, st.settledWith, 1)
		for i, c := range st.settledWith[0] {
			require.Zero(t, c.Amount, c.Key)
			want := st.reserved[0][i]
			want.Amount = 0
			require.Equal(t, want, c)
		}
		require.Equal(t, int64(90), st.settled[0]["key:k:each:usd-day:2026-11-28"])
		require.Equal(t, int64(1), st.settled[0]["key:k:each:rpm"])
	}
}

func TestMode(t *testing.T) {
	l := New(Options{Store: &scriptStore{}, Limits: []Limit{
		{Scope: ScopeKey, ID: "closed", RequestsPerMinute: 1, OnStoreError: FailClosed},
		{Scope: ScopeKey, ID: "nothing", OnStoreError: FailClosed}, // no limit: Admit never asks the store
		{Scope: ScopeTeam, ID: "local", RequestsPerMinute: 1, OnStoreError: LocalOnly},
		{Scope: ScopeTenant, ID: "open", RequestsPerMinute: 1},
	}})
	for _, tc := range []struct {
		s    Subject
		want Mode
	}{
		{Subject{Tenant: "x", Key: "closed"}, FailClosed},
		{Subject{Tenant: "x", Key: "nothing"}, FailOpen},
		{Subject{Tenant: "x", Team: "local", Key: "k"}, LocalOnly},
		{Subject{Tenant: "x", Team: "local", Key: "closed"}, FailClosed},
		{Subject{Tenant: "open", Key: "k"}, FailOpen},
		{Subject{Tenant: "x", Key: "k"}, FailOpen},
	} {
		assert.Equal(t, tc.want, l.Mode(tc.s), "%+v", tc.s)
	}
	assert.Equal(t, FailOpen, New(Options{}).Mode(Subject{Key: "k"}), "the zero Options: no limits")
}

// The Limiter's breaker: a dead store is asked 20 times at 100 r/s, then
// not until OpenFor has passed; then once (the probe) per OpenFor until
// it answers.
func TestLimiterBreaker(t *testing.T) {
	clk := &monoClock{}
	st := &scriptStore{err: fmt.Errorf("%w: down", ErrStore)}
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeKey, RequestsPerMinute: 5, OnStoreError: FailClosed}}, Breaker: BreakerOptions{Clock: clk.Now}})
	s := Subject{Tenant: "a", Key: "k"}
	ctx := context.Background()
	for i := range 19 {
		clk.Add(10 * time.Millisecond)
		_, res := l.Admit(ctx, s, Amounts{})
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.Equal(t, BreakerClosed, l.Status().Breaker, "after %d failures", i+1)
	}
	clk.Add(10 * time.Millisecond)
	_, res := l.Admit(ctx, s, Amounts{})
	require.ErrorIs(t, res.StoreErr, ErrStore)
	require.Equal(t, Status{Degraded: true, StoreErrors: 20, Breaker: BreakerOpen, WindowCalls: 20, WindowFailures: 20}, l.Status())
	opened := clk.Now()

	// Open: nothing reaches the store, not even Probe.
	for range 10 {
		clk.Add(50 * time.Millisecond)
		_, res := l.Admit(ctx, s, Amounts{})
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.False(t, res.Allowed)
	}
	l.Probe(ctx)
	require.Len(t, st.reserved, 20)
	require.Zero(t, st.pinged)
	require.EqualValues(t, 30, l.Status().StoreErrors, "calls failed at once count too")

	// Half-open: Probe is the probe; it fails and the breaker reopens.
	clk.Set(opened + time.Second)
	require.Equal(t, BreakerHalfOpen, l.Status().Breaker)
	l.Probe(ctx)
	require.Equal(t, 1, st.pinged)
	require.Equal(t, BreakerOpen, l.Status().Breaker)
	_, _ = l.Admit(ctx, s, Amounts{})
	require.Len(t, st.reserved, 20)

	// The store is back: the next probe (an admission) closes it.
	st.err, st.admit = nil, Admission{Allowed: true}
	clk.Add(time.Second)
	ticket, res := l.Admit(ctx, s, Amounts{})
	require.NoError(t, res.StoreErr)
	require.True(t, res.Allowed)
	require.NotNil(t, ticket)
	require.Len(t, st.reserved, 21)
	require.Equal(t, Status{StoreErrors: 32, Breaker: BreakerClosed}, l.Status())
	l.Probe(ctx)
	require.Equal(t, 1, st.pinged, "a healthy store is not pinged")
}

// Probe asks a store that failed in the closed state, and its answer
// clears Degraded.
func TestProbeRecovers(t *testing.T) {
	clk := &monoClock{}
	st := &scriptStore{err: fmt.Errorf("%w: down", ErrStore)}
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeKey, RequestsPerMinute: 5}}, Breaker: BreakerOptions{Clock: clk.Now}})
	_, res := l.Admit(context.Background(), Subject{Tenant: "a", Key: "k"}, Amounts{})
	require.Error(t, res.StoreErr)
	require.True(t, l.Status().Degraded)
	st.err = nil
	l.Probe(context.Background())
	require.Equal(t, 1, st.pinged)
	require.False(t, l.Status().Degraded)
	require.Equal(t, 2, l.Status().WindowCalls)
}

func TestRemainingForPolicy(t *testing.T) {
	st := &scriptStore{admit: Admission{Allowed: true}}
	l := New(Options{Store: st, Now: nov28, BudgetCacheFor: time.Hour, Limits: []Limit{
		{Scope: ScopeKey, TokensPerMinute: 1000, MicroUSDPerDay: 4_000_000},
		{Scope: ScopeTeam, MicroUSDPerDay: 10_000_000, MicroUSDPerMonth: 6_000_000},
	}})
	s := Subject{Tenant: "a", Team: "t", Key: "k"}
	r := l.Remaining(context.Background(), s)
	require.Equal(t, 1, st.peeked)
	require.InDelta(t, 2.0, *r.KeyRemainingUSD, 1e-9)
	require.InDelta(t, 3.0, *r.TeamRemainingUSD, 1e-9, "the tighter of the team's day and month")

	// An admission refreshes the cache; Remaining then needs no store read.
	l.Admit(context.Background(), s, Amounts{Tokens: 100, MicroUSD: 1_000_000})
	r = l.Remaining(context.Background(), s)
	require.Equal(t, 1, st.peeked)
	require.InDelta(t, 3.0, *r.KeyRemainingUSD, 1e-9)

	st.err = errors.New("unused")
	require.Equal(t, Remaining{}, New(Options{Store: st}).Remaining(context.Background(), s), "no limits, nothing to say")
}

// A settlement survives a store blip: it retries, past the breaker.
func TestSettleRetries(t *testing.T) {
	st := &flakySettle{scriptStore: scriptStore{admit: Admission{Allowed: true}}, failures: 2}
	clk := &monoClock{}
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeKey, MicroUSDPerDay: 100}}, Breaker: BreakerOptions{Clock: clk.Now}})
	ticket, res := l.Admit(context.Background(), Subject{Tenant: "a", Key: "k"}, Amounts{MicroUSD: 10})
	require.True(t, res.Allowed)
	open(t, l.br, clk) // as if other calls had just failed
	_, ok := l.br.allow()
	require.False(t, ok)
	require.NoError(t, ticket.Settle(context.Background(), Amounts{MicroUSD: 7}))
	require.Equal(t, 3, st.calls)
	require.Len(t, st.settled, 1)
}

type flakySettle struct {
	scriptStore
	failures, calls int
}

func (f *flakySettle) Settle(ctx context.Context, tag, id string, c []Check, actual map[string]int64) error {
	f.calls++
	if f.calls <= f.failures {
		return fmt.Errorf("%w: blip", ErrStore)
	}
	return f.scriptStore.Settle(ctx, tag, id, c, actual)
}

// realStores runs f against Memory and against the Redis store (skipped,
// or failed under SWITCHYARD_REQUIRE_REDIS=1, without a test server).
func realStores(t *testing.T, f func(t *testing.T, store Store, tenant string)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemory(nil), "a") })
	t.Run("redis", func(t *testing.T) {
		f(t, NewRedis(stRedisClient(t, stRedisAddr(t)), stPrefix), stTag(t))
	})
}

// A settlement larger than its reservation is charged in full, past the
// limit, and the budget then refuses the next request.
func TestOverspendChargedAndNextDenied(t *testing.T) {
	realStores(t, func(t *testing.T, store Store, tenant string) {
		ctx := stCtx(t)
		l := New(Options{Store: store, Now: nov28, Limits: []Limit{{Scope: ScopeKey, MicroUSDPerDay: 1_000_000, OnStoreError: FailClosed}}})
		s := Subject{Tenant: tenant, Key: "k"}
		ticket, res := l.Admit(ctx, s, Amounts{MicroUSD: 600_000})
		require.NoError(t, res.StoreErr)
		require.True(t, res.Allowed)
		require.NoError(t, ticket.Settle(ctx, Amounts{MicroUSD: 1_700_000}))

		states, err := l.Usage(ctx, s)
		require.NoError(t, err)
		require.Len(t, states, 1)
		require.Zero(t, states[0].Remaining)
		// Read the counter under a larger limit: spent is 1.7M, past 1M.
		checks, _ := l.checks(s, Amounts{})
		checks[0].Limit = 10_000_000
		wide, err := store.Peek(ctx, tag(s), checks)
		require.NoError(t, err)
		require.EqualValues(t, 10_000_000-1_700_000, wide[0].Remaining)

		for _, est := range []int64{1, 0} {
			ticket, res = l.Admit(ctx, s, Amounts{MicroUSD: est})
			require.NoError(t, res.StoreErr)
			require.False(t, res.Allowed, "estimate %d", est)
			require.Nil(t, ticket)
			require.NotNil(t, res.Denied)
			require.Equal(t, USD, res.Denied.Metric)
		}
	})
}

// A request admitted while the store was down (fail_open) is counted when
// it settles after the store is back.
func TestFailOpenAdmissionCounted(t *testing.T) {
	realStores(t, func(t *testing.T, store Store, tenant string) {
		ctx := stCtx(t)
		sw := &switchable{Store: store}
		l := New(Options{Store: sw, Now: nov28, Limits: []Limit{{Scope: ScopeKey, RequestsPerMinute: 10, TokensPerMinute: 1000, MicroUSDPerDay: 1_000_000}}})
		s := Subject{Tenant: tenant, Key: "k"}
		sw.down.Store(true)
		ticket, res := l.Admit(ctx, s, Amounts{Tokens: 500, MicroUSD: 500_000})
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.True(t, res.Allowed)
		require.Equal(t, FailOpen, res.Mode)
		require.NotNil(t, ticket)

		sw.down.Store(false)
		require.NoError(t, ticket.Settle(ctx, Amounts{Tokens: 300, MicroUSD: 800_000}))
		states, err := l.Usage(ctx, s)
		require.NoError(t, err)
		got := map[Metric]int64{}
		for _, st := range states {
			got[st.Metric] = st.Remaining
		}
		// Rates refill with time: a real-time store may have given back a
		// few tokens (one per 60 ms), not a request (one per 6 s).
		assert.EqualValues(t, 9, got[Requests])
		assert.GreaterOrEqual(t, got[Tokens], int64(700))
		assert.LessOrEqual(t, got[Tokens], int64(705))
		assert.EqualValues(t, 200_000, got[USD])
		_, res = l.Admit(ctx, s, Amounts{MicroUSD: 300_000})
		require.False(t, res.Allowed, "the fail_open request's spend counts against the budget")
	})
}

// switchable is a Store that fails while down.
type switchable struct {
	Store
	down atomic.Bool
}

func (s *switchable) Reserve(ctx context.Context, tag, id string, checks []Check, ttl time.Duration) (Admission, error) {
	if s.down.Load() {
		return Admission{}, fmt.Errorf("%w: down", ErrStore)
	}
	return s.Store.Reserve(ctx, tag, id, checks, ttl)
}

// Overshoot through the Limiter, N tickets in flight at once: spend passes
// the budget by at most the sum of their (actual - reserved).
func TestOvershootBoundedConcurrently(t *testing.T) {
	realStores(t, func(t *testing.T, store Store, tenant string) {
		ctx := stCtx(t)
		const limit, est = 2_000_000, 100_000
		l := New(Options{Store: store, Now: nov28, Limits: []Limit{{Scope: ScopeTeam, MicroUSDPerDay: limit, OnStoreError: FailClosed}}})
		s := Subject{Tenant: tenant, Team: "t", Key: "k"}
		var wg sync.WaitGroup
		tickets := make(chan *Ticket, 100)
		start := make(chan struct{})
		for range 100 {
			wg.Go(func() {
				<-start
				ticket, res := l.Admit(ctx, s, Amounts{MicroUSD: est})
				assert.NoError(t, res.StoreErr)
				if res.Allowed {
					tickets <- ticket
				}
			})
		}
		close(start)
		wg.Wait()
		close(tickets)
		var inFlight []*Ticket
		for tk := range tickets {
			inFlight = append(inFlight, tk)
		}
		require.Len(t, inFlight, limit/est)
		var excess int64
		for i, tk := range inFlight {
			actual := est + int64(i%5-1)*25_000 // -25k .. +75k
			excess += actual - est
			wg.Go(func() { assert.NoError(t, tk.Settle(ctx, Amounts{MicroUSD: actual})) })
		}
		wg.Wait()
		checks, _ := l.checks(s, Amounts{})
		checks[0].Limit = 100 * limit
		wide, err := store.Peek(ctx, tag(s), checks)
		require.NoError(t, err)
		spent := 100*limit - wide[0].Remaining
		require.Positive(t, excess)
		assert.LessOrEqual(t, spent-limit, excess)
		assert.Equal(t, excess, spent-limit, "every reservation fit exactly: the whole excess is past the limit")
		_, res := l.Admit(ctx, s, Amounts{MicroUSD: 1})
		assert.False(t, res.Allowed)
	})
}
