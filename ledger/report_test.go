package ledger_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/ledger"
)

// usd is n micro-USD in pico-USD.
func usd(micro int64) int64 { return micro * 1_000_000 }

func reportStore(t *testing.T, es ...ledger.Entry) ledger.Store {
	t.Helper()
	m := ledger.NewMemory(0, nil)
	for _, e := range es {
		require.NoError(t, m.Append(context.Background(), e))
	}
	return m
}

func TestRunReport(t *testing.T) {
	d0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return d0.Add(time.Duration(h) * time.Hour) }
	es := []ledger.Entry{
		{Time: at(1), Tenant: "acme", Team: "search", KeyID: "k1", Model: "chat", Kind: "local", PromptTokens: 10, CompletionTokens: 5, CostPicoUSD: usd(1), SavingsPicoUSD: usd(9)},
		{Time: at(2), Tenant: "acme", Team: "search", KeyID: "k1", Model: "gpt", Kind: "proprietary", PromptTokens: 100, CompletionTokens: 50, CostPicoUSD: usd(300), SavingsPicoUSD: -usd(20)},
		{Time: at(25), Tenant: "acme", Team: "ads", KeyID: "k2", Model: "gpt", Kind: "proprietary", PromptTokens: 40, CompletionTokens: 10, CostPicoUSD: usd(100)},
		{Time: at(49), Tenant: "globex", Team: "ads", KeyID: "k3", Model: "chat", Kind: "selfhosted", PromptTokens: 7, CostPicoUSD: usd(2), SavingsPicoUSD: usd(5)},
		{Time: at(72), Tenant: "acme", Team: "search", Model: "chat", Kind: "local", CostPicoUSD: usd(1000)}, // == To: out
	}
	store := reportStore(t, es...)
	ctx := context.Background()

	t.Run("daily by team", func(t *testing.T) {
		r, err := ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: at(72), Interval: 24 * time.Hour, StackBy: ledger.ByTeam})
		require.NoError(t, err)
		require.Equal(t, []time.Time{d0, at(24), at(48)}, r.Buckets)
		assert.Equal(t, int64(4), r.Total.Requests)
		assert.Equal(t, "0.000403", r.Total.CostUSD)
		assert.Equal(t, "-0.000006", r.Total.SavingsUSD)
		require.Len(t, r.Series, 2)
		assert.Equal(t, "search", r.Series[0].Group, "most expensive first")
		assert.Equal(t, []string{"0.000301", "0", "0"}, costs(r.Series[0].Points))
		assert.Equal(t, []string{"0", "0.0001", "0.000002"}, costs(r.Series[1].Points))
		assert.Equal(t, []string{"search", "ads"}, groups(r.Top[ledger.ByTeam]))
		assert.Equal(t, []string{"k1", "k2", "k3"}, groups(r.Top[ledger.ByKey]))
		assert.Equal(t, []string{"proprietary", "selfhosted", "local"}, groups(r.ByKind))
		assert.Equal(t, int64(150+50), r.ByKind[0].PromptTokens+r.ByKind[0].CompletionTokens)
		assert.Equal(t, []string{"search", "ads"}, groups(r.ByTeam))
		assert.Equal(t, "-0.000011", r.ByTeam[0].SavingsUSD)
		assert.Equal(t, []string{"acme", "globex"}, r.Dimensions[ledger.ByTenant])
		assert.Equal(t, []string{"local", "proprietary", "selfhosted"}, r.Dimensions[ledger.ByKind])
	})

	t.Run("hourly, filtered, dimensions unfiltered", func(t *testing.T) {
		r, err := ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0.Add(30 * time.Minute), To: at(3), Interval: time.Hour,
			StackBy: ledger.ByKind, Filter: ledger.Filter{Team: "search"}})
		require.NoError(t, err)
		require.Equal(t, []time.Time{d0, at(1), at(2)}, r.Buckets, "the first bucket starts at From truncated")
		assert.Equal(t, int64(2), r.Total.Requests)
		require.Len(t, r.Series, 2)
		assert.Equal(t, "proprietary", r.Series[0].Group)
		assert.Equal(t, []string{"0", "0", "0.0003"}, costs(r.Series[0].Points))
		assert.Equal(t, []string{"0", "0.000001", "0"}, costs(r.Series[1].Points))
		assert.Equal(t, []string{"search"}, r.Dimensions[ledger.ByTeam], "only the range's teams")
		r, err = ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: at(72), Interval: 24 * time.Hour,
			StackBy: ledger.ByTeam, Filter: ledger.Filter{Tenant: "acme", Kind: "proprietary"}})
		require.NoError(t, err)
		assert.Equal(t, "0.0004", r.Total.CostUSD)
		assert.Equal(t, []string{"ads", "search"}, r.Dimensions[ledger.ByTeam])
	})

	t.Run("other series", func(t *testing.T) {
		r, err := ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: at(72), Interval: 24 * time.Hour, StackBy: ledger.ByKey, MaxSeries: 2})
		require.NoError(t, err)
		require.Len(t, r.Series, 2)
		assert.Equal(t, "k1", r.Series[0].Group)
		assert.True(t, r.Series[1].Other)
		assert.Equal(t, 2, r.Series[1].Groups)
		assert.Equal(t, "0.000102", r.Series[1].Total.CostUSD)
		assert.Equal(t, []string{"0", "0.0001", "0.000002"}, costs(r.Series[1].Points))
	})

	t.Run("errors", func(t *testing.T) {
		_, err := ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: d0.AddDate(0, 3, 0), Interval: time.Hour, StackBy: ledger.ByTeam})
		assert.ErrorIs(t, err, ledger.ErrTooManyBuckets)
		_, err = ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: at(3), Interval: time.Hour, StackBy: "colour"})
		assert.ErrorIs(t, err, ledger.ErrUnknownGroup)
		_, err = ledger.RunReport(ctx, store, ledger.ReportQuery{From: d0, To: at(3), Interval: time.Minute, StackBy: ledger.ByTeam})
		assert.Error(t, err)
		big := reportStore(t, ledger.Entry{Time: at(1), CostPicoUSD: math.MaxInt64}, ledger.Entry{Time: at(2), CostPicoUSD: 1})
		_, err = ledger.RunReport(ctx, big, ledger.ReportQuery{From: d0, To: at(3), Interval: time.Hour})
		assert.ErrorIs(t, err, ledger.ErrOverflow)
		r, err := ledger.RunReport(ctx, store, ledger.ReportQuery{From: at(3), To: at(3), Interval: time.Hour})
		require.NoError(t, err)
		assert.Empty(t, r.Buckets)
		assert.Zero(t, r.Total.Requests)
	})
}

func TestBudgetReport(t *testing.T) {
	// Now is 10 days into a 30-day month: the forecast triples the spend.
	now := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	es := []ledger.Entry{
		{Time: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), Team: "search", CostPicoUSD: usd(999_000_000)}, // last month
		{Time: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC), Team: "search", Tenant: "acme", CostPicoUSD: usd(40_000_000)},
		{Time: time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC), Team: "search", Tenant: "acme", CostPicoUSD: usd(20_000_000)},
		{Time: time.Date(2026, 11, 6, 12, 0, 0, 0, time.UTC), Team: "ads", Tenant: "acme", CostPicoUSD: usd(5_000_000)},
		{Time: time.Date(2026, 11, 10, 20, 0, 0, 0, time.UTC), Team: "ads", Tenant: "acme", CostPicoUSD: usd(3_000_000)},
	}
	store := reportStore(t, es...)
	st, err := ledger.BudgetReport(context.Background(), store, now, []ledger.Budget{
		{Scope: ledger.ByTeam, Period: ledger.PeriodMonth, LimitPicoUSD: usd(100_000_000)},              // each team: $100
		{Scope: ledger.ByTenant, ID: "acme", Period: ledger.PeriodMonth, LimitPicoUSD: usd(50_000_000)}, // $50, already over
		{Scope: ledger.ByTeam, ID: "ads", Period: ledger.PeriodDay, LimitPicoUSD: usd(10_000_000)},      // $10 a day, nothing today
		{Scope: ledger.ByTeam, ID: "ignored", Period: ledger.PeriodDay},                                 // no limit
	})
	require.NoError(t, err)
	require.Len(t, st, 4)
	byKey := map[string]ledger.BudgetStatus{}
	for _, s := range st {
		byKey[s.Scope+"/"+s.ID+"/"+s.Period] = s
	}
	assert.Equal(t, "tenant", st[0].Scope, "most consumed first")

	acme := byKey["tenant/acme/month"]
	assert.Equal(t, "68", acme.SpentUSD)
	assert.Equal(t, "0", acme.RemainingUSD)
	assert.Equal(t, "18", acme.OverUSD)
	require.NotNil(t, acme.ExhaustedAt)
	assert.Equal(t, time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC), *acme.ExhaustedAt, "the entry that crossed the limit")

	search := byKey["team/search/month"]
	assert.Equal(t, int64(2), search.Requests, "last month's entry is not counted")
	assert.Equal(t, "60", search.SpentUSD)
	assert.Equal(t, "6", search.RateUSDPerDay)
	assert.Equal(t, "180", search.ForecastUSD, "60 + 6/day × 20 days")
	require.NotNil(t, search.ExhaustedAt)
	assert.WithinDuration(t, now.Add(40*24*time.Hour/6), *search.ExhaustedAt, time.Millisecond, "$40 left at $6 a day")
	require.Len(t, search.Burn, 11, "the start and the end of each of the 10 days")
	assert.Equal(t, "100", search.Burn[0].RemainingUSD)
	assert.Equal(t, "60", search.Burn[2].RemainingUSD)
	assert.Equal(t, "40", search.Burn[10].RemainingUSD)

	ads := byKey["team/ads/month"]
	assert.Equal(t, "8", ads.SpentUSD)
	assert.Equal(t, "24", ads.ForecastUSD)
	assert.Nil(t, ads.ExhaustedAt, "the forecast stays under the limit")

	adsDay := byKey["team/ads/day"]
	assert.Equal(t, "0", adsDay.SpentUSD)
	assert.Equal(t, "0", adsDay.ForecastUSD)
	assert.Equal(t, now, adsDay.Start)
	assert.Equal(t, now.Add(24*time.Hour), adsDay.End)
	assert.Len(t, adsDay.Burn, 1, "the period just started")
}

func costs(ts []ledger.Total) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.CostUSD
	}
	return out
}

func groups(ts []ledger.Total) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Group
	}
	return out
}

// Buckets never overflows: a range past what a time.Duration holds (to.Sub
// saturates at about 292 years) is too many buckets, like any range of
// more than MaxBuckets intervals, whatever the interval.
func TestBucketsRange(t *testing.T) {
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	d0 := date(2026, 1, 1)
	maxTime := time.Unix(1<<62, 0).UTC() // far past year 9999
	for _, c := range []struct {
		name     string
		from, to time.Time
		interval time.Duration
		n        int // buckets; -1: ErrTooManyBuckets
	}{
		{"QA: 1900 to 2200 by day", date(1900, 1, 1), date(2200, 1, 1), 24 * time.Hour, -1},
		{"QA: 1900 to 2200 by hour", date(1900, 1, 1), date(2200, 1, 1), time.Hour, -1},
		{"QA: year 1 to 9999 by day", date(1, 1, 1), date(9999, 12, 31), 24 * time.Hour, -1},
		{"QA: year 1 to 9999 by hour", date(1, 1, 1), date(9999, 12, 31), time.Hour, -1},
		{"zero time to far future", time.Time{}, maxTime, 24 * time.Hour, -1},
		{"zero time to far future by hour", time.Time{}, maxTime, time.Hour, -1},
		{"292 years and a day", d0, d0.Add(math.MaxInt64).Add(24 * time.Hour), 24 * time.Hour, -1},
		{"just under the saturation", d0, d0.Add(math.MaxInt64 - 1), 24 * time.Hour, -1},
		{"a year by hour", d0, d0.AddDate(1, 0, 0), time.Hour, -1},
		{"MaxBuckets days", d0, d0.AddDate(0, 0, ledger.MaxBuckets), 24 * time.Hour, ledger.MaxBuckets},
		{"MaxBuckets days and a nanosecond", d0, d0.AddDate(0, 0, ledger.MaxBuckets).Add(1), 24 * time.Hour, -1},
		{"MaxBuckets hours", d0, d0.Add(ledger.MaxBuckets * time.Hour), time.Hour, ledger.MaxBuckets},
		{"MaxBuckets hours and one", d0, d0.Add((ledger.MaxBuckets + 1) * time.Hour), time.Hour, -1},
		{"from mid-interval: truncated", d0.Add(90 * time.Minute), d0.Add(3 * time.Hour), time.Hour, 2},
		{"a partial last bucket", d0, d0.Add(49 * time.Hour), 24 * time.Hour, 3},
		{"empty", d0, d0, time.Hour, 0},
		{"to before from", date(2200, 1, 1), date(1900, 1, 1), 24 * time.Hour, 0},
		{"year 9999 to year 1", date(9999, 12, 31), date(1, 1, 1), time.Hour, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			bs, err := ledger.Buckets(c.from, c.to, c.interval)
			if c.n < 0 {
				require.ErrorIs(t, err, ledger.ErrTooManyBuckets)
				assert.Nil(t, bs)
				// And RunReport says so, rather than panicking.
				_, err = ledger.RunReport(context.Background(), reportStore(t), ledger.ReportQuery{From: c.from, To: c.to, Interval: c.interval, StackBy: ledger.ByTeam})
				require.ErrorIs(t, err, ledger.ErrTooManyBuckets)
				return
			}
			require.NoError(t, err)
			require.Len(t, bs, c.n)
			for i, b := range bs {
				assert.Equal(t, c.from.Truncate(c.interval).Add(time.Duration(i)*c.interval), b)
			}
		})
	}
}

// Days counts the UTC days a range touches without overflowing, and
// CheckRange bounds them from the epoch on.
func TestRangeDays(t *testing.T) {
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name     string
		from, to time.Time
		days     int64
		tooLong  bool
	}{
		{"one day", date(2026, 3, 1), date(2026, 3, 2), 1, false},
		{"a nanosecond", date(2026, 3, 1), date(2026, 3, 1).Add(1), 1, false},
		{"across midnight", date(2026, 3, 1).Add(23 * time.Hour), date(2026, 3, 2).Add(time.Hour), 2, false},
		{"other time zone", date(2026, 3, 2).In(time.FixedZone("X", -5*3600)), date(2026, 3, 3).In(time.FixedZone("Y", 9*3600)), 1, false},
		{"empty", date(2026, 3, 1), date(2026, 3, 1), 0, false},
		{"reversed", date(2026, 12, 5), date(2026, 12, 1), 0, false},
		{"before the epoch", date(1969, 12, 31), date(1970, 1, 2), 2, false},
		{"zero time to now: from the epoch", time.Time{}, date(2026, 3, 1), 719162 + 20513, false},
		{"year 1 to 2026: from the epoch", date(1, 1, 1), date(2026, 3, 1), 719162 + 20513, false},
		{"QA: to 9999-12-31", date(2026, 12, 1), date(9999, 12, 31), 2912108, true},
		{"QA: 1900 to 2200", date(1900, 1, 1), date(2200, 1, 1), 109573, true},
		{"QA: year 1 to 9999", date(1, 1, 1), date(9999, 12, 31), 3652058, true},
		{"MaxRangeDays from the epoch", time.Unix(0, 0), time.Unix(0, 0).AddDate(0, 0, ledger.MaxRangeDays), ledger.MaxRangeDays, false},
		{"MaxRangeDays and a nanosecond", time.Unix(0, 0), time.Unix(0, 0).AddDate(0, 0, ledger.MaxRangeDays).Add(1), ledger.MaxRangeDays + 1, true},
		{"zero time to far future", time.Time{}, time.Unix(1<<62, 0), -1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.days >= 0 {
				assert.Equal(t, c.days, ledger.Days(c.from, c.to))
			}
			err := ledger.CheckRange(c.from, c.to)
			if !c.tooLong {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ledger.ErrRangeTooLong)
			var rt *ledger.RangeTooLongError
			require.ErrorAs(t, err, &rt)
			assert.EqualValues(t, ledger.MaxRangeDays, rt.MaxDays)
			assert.Greater(t, rt.Days, rt.MaxDays)
		})
	}
}
