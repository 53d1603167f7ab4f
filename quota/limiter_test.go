package quota

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptStore records the checks it is given and answers as told.
type scriptStore struct {
	err      error
	admit    Admission
	reserved [][]Check
	settled  []map[string]int64
	peeked   int
}

var _ Store = (*scriptStore)(nil)

func (s *scriptStore) Reserve(_ context.Context, _, _ string, checks []Check, _ time.Duration) (Admission, error) {
	s.reserved = append(s.reserved, checks)
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

func (s *scriptStore) Settle(_ context.Context, _, _ string, _ []Check, actual map[string]int64) error {
	s.settled = append(s.settled, actual)
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
	}{
		{[]Mode{FailOpen}, true, false},
		{[]Mode{""}, true, false},
		{[]Mode{FailOpen, LocalOnly}, true, true},
		{[]Mode{LocalOnly, FailClosed}, false, false},
	} {
		var limits []Limit
		for i, m := range tc.modes {
			limits = append(limits, Limit{Scope: ScopeKey, ID: "k" + string(rune('0'+i)), RequestsPerMinute: 1, OnStoreError: m})
			limits[i].ID = ""
			if i > 0 {
				limits[i].Scope = ScopeTeam
			}
		}
		st := &scriptStore{err: down}
		l := New(Options{Store: st, Limits: limits, BreakFor: time.Hour})
		ticket, res := l.Admit(context.Background(), Subject{Tenant: "a", Team: "t", Key: "k"}, Amounts{})
		require.Nil(t, ticket)
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.Equal(t, tc.allowed, res.Allowed, "%v", tc.modes)
		require.Equal(t, tc.local, res.LocalOnly(), "%v", tc.modes)
		require.True(t, l.Status().Degraded)

		// The breaker: the store is not asked again until BreakFor passes.
		_, res = l.Admit(context.Background(), Subject{Tenant: "a", Team: "t", Key: "k"}, Amounts{})
		require.ErrorIs(t, res.StoreErr, ErrStore)
		require.Len(t, st.reserved, 1)
		require.EqualValues(t, 2, l.Status().StoreErrors)
	}
}

func TestBreakerRecovers(t *testing.T) {
	st := &scriptStore{err: fmt.Errorf("%w: down", ErrStore)}
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeKey, RequestsPerMinute: 5}}, BreakFor: 20 * time.Millisecond})
	s := Subject{Tenant: "a", Key: "k"}
	_, res := l.Admit(context.Background(), s, Amounts{})
	require.Error(t, res.StoreErr)
	st.err, st.admit = nil, Admission{Allowed: true}
	require.Eventually(t, func() bool {
		_, res := l.Admit(context.Background(), s, Amounts{})
		return res.StoreErr == nil && res.Allowed
	}, time.Second, 5*time.Millisecond)
	require.False(t, l.Status().Degraded)
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
	l := New(Options{Store: st, Limits: []Limit{{Scope: ScopeKey, MicroUSDPerDay: 100}}, BreakFor: time.Hour})
	ticket, res := l.Admit(context.Background(), Subject{Tenant: "a", Key: "k"}, Amounts{MicroUSD: 10})
	require.True(t, res.Allowed)
	l.brokenUntil.Store(time.Now().Add(time.Hour).UnixNano()) // as if another call had just failed
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
