package ledger

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fixture is five settled requests over two days; totalsCases are their
// sums, computed by hand.
var fixture = []Entry{
	{Time: base.Add(1 * time.Hour), RequestID: "r1", DecisionID: "d1", Tenant: "acme", Team: "search", KeyID: "k1",
		Model: "gpt-4o", Backend: "openai-east", Kind: "openai", Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06",
		PromptTokens: 100, CompletionTokens: 50, CachedTokens: 10, CostPicoUSD: 1, SavingsPicoUSD: 5},
	{Time: base.Add(2 * time.Hour), RequestID: "r2", DecisionID: "d2", Tenant: "acme", Team: "search", KeyID: "k2",
		Model: "claude", Backend: "bedrock", Kind: "bedrock", Provider: "anthropic", UpstreamModel: "anthropic.claude-v2",
		PromptTokens: 200, CompletionTokens: 20, CacheWriteTokens: 30, CostPicoUSD: 1_000_000_000_000_000, SavingsPicoUSD: -7},
	{Time: base.Add(3 * time.Hour), RequestID: "r3", DecisionID: "d3", Tenant: "globex", Team: "ads", KeyID: "k3",
		Model: "gpt-4o", Backend: "openai-west", Kind: "openai", Provider: "openai", UpstreamModel: "gpt-4o",
		PromptTokens: 1000, CompletionTokens: 500, CostPicoUSD: 906_000_000},
	{Time: base.Add(26 * time.Hour), RequestID: "r4", DecisionID: "d4", Tenant: "globex", Team: "ads", KeyID: "k3",
		Model: "gpt-4o", Backend: "local-llama", Kind: "local", Provider: "local", UpstreamModel: "llama-3-8b",
		PromptTokens: 7, CompletionTokens: 3, SavingsPicoUSD: 2_000_000_000_000},
	{Time: base.Add(27*time.Hour + 123456789), RequestID: "r5", DecisionID: "d5", Tenant: "acme", KeyID: "k4",
		Model: "claude", Backend: "bedrock", Kind: "bedrock", Provider: "anthropic", UpstreamModel: "anthropic.claude-v2",
		PromptTokens: 1, CompletionTokens: 1, CachedTokens: 1, CacheWriteTokens: 1,
		CostPicoUSD: 123_456_789_012_345, SavingsPicoUSD: 1, Estimated: true},
}

// tot builds a Total; the decimal strings are written out by hand too.
func tot(group string, req, prompt, completion, cached, cacheWrite, cost int64, costUSD string, savings int64, savingsUSD string) Total {
	return Total{Group: group, Requests: req, PromptTokens: prompt, CompletionTokens: completion,
		CachedTokens: cached, CacheWriteTokens: cacheWrite,
		CostPicoUSD: cost, CostUSD: costUSD, SavingsPicoUSD: savings, SavingsUSD: savingsUSD}
}

var (
	claude = func(g string) Total {
		return tot(g, 2, 201, 21, 1, 31, 1_123_456_789_012_345, "1123.456789012345", -6, "-0.000000000006")
	}
	openai = func(g string) Total {
		return tot(g, 2, 1100, 550, 10, 0, 906_000_001, "0.000906000001", 5, "0.000000000005")
	}
	local = func(g string) Total { return tot(g, 1, 7, 3, 0, 0, 0, "0", 2_000_000_000_000, "2") }
)

var totalsCases = []struct {
	by   Group
	want []Total
}{
	{ByTeam, []Total{
		// 1 pico + 10^15 pico: not exact in a float64 of USD.
		tot("search", 2, 300, 70, 10, 30, 1_000_000_000_000_001, "1000.000000000001", -2, "-0.000000000002"),
		tot("", 1, 1, 1, 1, 1, 123_456_789_012_345, "123.456789012345", 1, "0.000000000001"),
		tot("ads", 2, 1007, 503, 0, 0, 906_000_000, "0.000906", 2_000_000_000_000, "2"),
	}},
	{ByModel, []Total{
		claude("claude"),
		tot("gpt-4o", 3, 1107, 553, 10, 0, 906_000_001, "0.000906000001", 2_000_000_000_005, "2.000000000005"),
	}},
	{ByBackend, []Total{
		claude("bedrock"),
		tot("openai-west", 1, 1000, 500, 0, 0, 906_000_000, "0.000906", 0, "0"),
		tot("openai-east", 1, 100, 50, 10, 0, 1, "0.000000000001", 5, "0.000000000005"),
		local("local-llama"),
	}},
	{ByKey, []Total{
		tot("k2", 1, 200, 20, 0, 30, 1_000_000_000_000_000, "1000", -7, "-0.000000000007"),
		tot("k4", 1, 1, 1, 1, 1, 123_456_789_012_345, "123.456789012345", 1, "0.000000000001"),
		tot("k3", 2, 1007, 503, 0, 0, 906_000_000, "0.000906", 2_000_000_000_000, "2"),
		tot("k1", 1, 100, 50, 10, 0, 1, "0.000000000001", 5, "0.000000000005"),
	}},
	{ByTenant, []Total{
		tot("acme", 3, 301, 71, 11, 31, 1_123_456_789_012_346, "1123.456789012346", -1, "-0.000000000001"),
		tot("globex", 2, 1007, 503, 0, 0, 906_000_000, "0.000906", 2_000_000_000_000, "2"),
	}},
	{ByKind, []Total{claude("bedrock"), openai("openai"), local("local")}},
	{ByProvider, []Total{claude("anthropic"), openai("openai"), local("local")}},
	{ByNothing, []Total{
		tot("", 5, 1308, 574, 11, 31, 1_123_457_695_012_346, "1123.457695012346", 1_999_999_999_999, "1.999999999999"),
	}},
}

func TestTotals(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, 0, &clock{t: base})
		appendAll(t, s, fixture...)
		for _, tc := range totalsCases {
			t.Run(string(tc.by), func(t *testing.T) {
				got, err := Totals(testCtx(t), s, base, base.Add(48*time.Hour), tc.by)
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
			})
		}
		t.Run("json", func(t *testing.T) {
			got, err := Totals(testCtx(t), s, base, base.Add(48*time.Hour), ByTeam)
			require.NoError(t, err)
			j, err := json.Marshal(got[0])
			require.NoError(t, err)
			require.JSONEq(t, `{"group":"search","requests":2,"prompt_tokens":300,"completion_tokens":70,
				"cached_tokens":10,"cache_write_tokens":30,"cost_usd":"1000.000000000001","savings_usd":"-0.000000000002"}`, string(j))
		})
		t.Run("empty range", func(t *testing.T) {
			got, err := Totals(testCtx(t), s, base.Add(-24*time.Hour), base, ByTeam)
			require.NoError(t, err)
			require.Empty(t, got)
		})
		t.Run("unknown group", func(t *testing.T) {
			_, err := Totals(testCtx(t), s, base, base.Add(48*time.Hour), Group("colour"))
			require.ErrorIs(t, err, ErrUnknownGroup)
		})
	})
}

func TestTotalsOverflow(t *testing.T) {
	s := NewMemory(0, nil)
	appendAll(t, s,
		Entry{Time: base, Team: "a", CostPicoUSD: math.MaxInt64},
		Entry{Time: base.Add(time.Second), Team: "a", CostPicoUSD: 1})
	_, err := Totals(testCtx(t), s, base, base.Add(time.Hour), ByTeam)
	require.ErrorIs(t, err, ErrOverflow)
}

func TestRangeBoundaries(t *testing.T) {
	// Entries at and around the midnights of four days.
	var es []Entry
	at := map[string]time.Time{}
	for d := range 4 {
		day := base.Add(time.Duration(d) * 24 * time.Hour)
		for _, off := range []struct {
			name string
			d    time.Duration
		}{{"00:00", 0}, {"00:00+1ns", 1}, {"12:00", 12 * time.Hour}, {"23:59:59.999999999", 24*time.Hour - 1}} {
			id := fmt.Sprintf("d%d@%s", d, off.name)
			at[id] = day.Add(off.d)
			es = append(es, Entry{Time: day.Add(off.d), RequestID: id, Team: "t", CostPicoUSD: 1})
		}
	}
	// want is every fixture ID with from <= time < to, in time order.
	want := func(from, to time.Time) []string {
		out := []string{}
		for _, e := range es {
			if !e.Time.Before(from) && e.Time.Before(to) {
				out = append(out, e.RequestID)
			}
		}
		return out
	}
	cases := []struct {
		name     string
		from, to time.Time
		n        int
	}{
		{"everything", base.Add(-time.Hour), base.Add(5 * 24 * time.Hour), 16},
		{"one day exactly", at["d1@00:00"], at["d2@00:00"], 4},
		{"from inclusive, to exclusive", at["d0@00:00+1ns"], at["d1@12:00"], 5},
		{"to at the first entry", base.Add(-time.Hour), at["d0@00:00"], 0},
		{"from after the last", at["d3@23:59:59.999999999"].Add(1), base.Add(10 * 24 * time.Hour), 0},
		{"only the last nanosecond", at["d3@23:59:59.999999999"], at["d3@23:59:59.999999999"].Add(1), 1},
		{"across midnights", at["d0@12:00"], at["d3@00:00+1ns"], 11},
		{"empty: from == to", at["d1@12:00"], at["d1@12:00"], 0},
		{"empty: from > to", at["d2@12:00"], at["d1@12:00"], 0},
		{"zero from", time.Time{}, at["d0@12:00"], 2},
		{"other time zone", at["d1@00:00"].In(time.FixedZone("X", -5*3600)), at["d1@12:00"].In(time.FixedZone("Y", 9*3600)), 2},
	}
	forEach(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, 0, &clock{t: base})
		appendAll(t, s, es...)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := collect(t, s, tc.from, tc.to)
				w := want(tc.from, tc.to)
				require.Len(t, w, tc.n, "the case's own count")
				require.Equal(t, w, ids(got))
				for _, e := range got {
					require.Equal(t, time.UTC, e.Time.Location())
					require.True(t, e.Time.Equal(at[e.RequestID]))
				}
			})
		}
	})
}

func TestRangeStopsOnError(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, 0, &clock{t: base})
		appendAll(t, s, fixture...)
		stop := errors.New("stop")
		n := 0
		err := s.Range(testCtx(t), base, base.Add(48*time.Hour), func(Entry) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, 2, n)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = s.Range(ctx, base, base.Add(48*time.Hour), func(Entry) error { return nil })
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.Append(ctx, fixture[0]), context.Canceled)
	})
}

func TestEntriesRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, 0, &clock{t: base})
		extreme := Entry{Time: base.Add(5 * time.Hour).In(time.FixedZone("X", 3600)), RequestID: "r,\"x\"\n", Team: "ünïcode ☃",
			PromptTokens: math.MaxInt64, CostPicoUSD: math.MaxInt64, SavingsPicoUSD: math.MinInt64, Estimated: true}
		appendAll(t, s, append(append([]Entry{}, fixture...), extreme)...)
		got := collect(t, s, base, base.Add(48*time.Hour))
		extreme.Time = extreme.Time.UTC()
		want := append(append([]Entry{}, fixture[:3]...), extreme)
		want = append(want, fixture[3:]...)
		require.Equal(t, want, got)
	})
}

func TestMemoryTimeOrder(t *testing.T) {
	s := NewMemory(0, nil)
	appendAll(t, s, fixture[4], fixture[2], fixture[0],
		Entry{Time: fixture[2].Time, RequestID: "r3 again"}, fixture[3], fixture[1])
	require.Equal(t, []string{"r1", "r2", "r3", "r3 again", "r4", "r5"}, ids(collect(t, s, base, base.Add(48*time.Hour))))
}

func TestZeroTimeIsNow(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		c := &clock{t: base.Add(7 * time.Hour).In(time.FixedZone("X", 3600))}
		s, _ := b.open(t, 0, c)
		appendAll(t, s, Entry{RequestID: "now"})
		got := collect(t, s, base, base.Add(24*time.Hour))
		require.Len(t, got, 1)
		require.Equal(t, base.Add(7*time.Hour), got[0].Time)
	})
}

func TestReplicas(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		one, two := b.open(t, 0, &clock{t: base})
		for i, e := range fixture {
			s := one
			if i%2 == 1 {
				s = two
			}
			appendAll(t, s, e)
		}
		for _, s := range []Store{one, two} {
			require.Equal(t, fixture, collect(t, s, base, base.Add(48*time.Hour)))
			got, err := Totals(testCtx(t), s, base, base.Add(48*time.Hour), ByNothing)
			require.NoError(t, err)
			require.Equal(t, totalsCases[len(totalsCases)-1].want, got)
		}
	})
}

func TestRetention(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		const retention = 72 * time.Hour
		c := &clock{t: base.Add(time.Hour)}
		s, _ := b.open(t, retention, c)
		everything := func() []string { return ids(collect(t, s, time.Time{}, base.Add(100*24*time.Hour))) }

		appendAll(t, s,
			Entry{Time: base, RequestID: "day0"},
			Entry{Time: base.Add(time.Hour), RequestID: "day0+1h"})
		c.Add(24 * time.Hour)
		appendAll(t, s, Entry{Time: c.Now(), RequestID: "day1"})
		require.Equal(t, []string{"day0", "day0+1h", "day1"}, everything())

		// At base+72h30m, retention keeps from base+30m on.
		c.Add(47*time.Hour + 30*time.Minute)
		require.Equal(t, []string{"day0+1h", "day1"}, everything())
		appendAll(t, s,
			Entry{Time: c.Now(), RequestID: "day3"},
			Entry{Time: base.Add(10 * time.Minute), RequestID: "too old"})
		require.Equal(t, []string{"day0+1h", "day1", "day3"}, everything())

		c.Add(48 * time.Hour)
		appendAll(t, s, Entry{Time: c.Now(), RequestID: "day5"})
		require.Equal(t, []string{"day3", "day5"}, everything())

		if m, ok := s.(*Memory); ok {
			m.mu.RLock()
			require.Len(t, m.entries, 2, "memory drops old entries on append")
			m.mu.RUnlock()
		}
	})
}

func TestCSVRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, 0, &clock{t: base})
		tricky := Entry{Time: base.Add(4*time.Hour + 1), RequestID: "quote \" comma , newline \n end", Team: "t",
			KeyID: "k", Model: "m", CostPicoUSD: math.MaxInt64, SavingsPicoUSD: math.MinInt64, PromptTokens: -1}
		// In time order: Redis returns a day in append order.
		want := append(append([]Entry{}, fixture[:3]...), tricky)
		want = append(want, fixture[3:]...)
		appendAll(t, s, want...)

		var buf bytes.Buffer
		require.NoError(t, WriteCSV(testCtx(t), s, &buf, base, base.Add(48*time.Hour)))
		rows, err := csv.NewReader(&buf).ReadAll()
		require.NoError(t, err)
		require.Equal(t, CSVHeader, rows[0])

		var got []Entry
		for _, r := range rows[1:] {
			got = append(got, parseRow(t, r))
		}
		require.Equal(t, want, got)
		require.Equal(t, "0.000906", rows[3][15], "r3's cost_usd")
		require.Equal(t, "2", rows[5][16], "r4's savings_usd")
	})
}

// parseRow is the inverse of WriteCSV's row.
func parseRow(t *testing.T, r []string) Entry {
	t.Helper()
	require.Len(t, r, len(CSVHeader))
	tm, err := time.Parse(time.RFC3339, r[0])
	require.NoError(t, err)
	n := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
		return v
	}
	usd := func(s string) int64 {
		v, err := ParseUSD(s)
		require.NoError(t, err)
		return v
	}
	est, err := strconv.ParseBool(r[17])
	require.NoError(t, err)
	return Entry{Time: tm.UTC(), RequestID: r[1], DecisionID: r[2], Tenant: r[3], Team: r[4], KeyID: r[5],
		Model: r[6], Backend: r[7], Kind: r[8], Provider: r[9], UpstreamModel: r[10],
		PromptTokens: n(r[11]), CompletionTokens: n(r[12]), CachedTokens: n(r[13]), CacheWriteTokens: n(r[14]),
		CostPicoUSD: usd(r[15]), SavingsPicoUSD: usd(r[16]), Estimated: est}
}

func TestCSVFormulaCells(t *testing.T) {
	s := NewMemory(0, nil)
	appendAll(t, s, Entry{Time: base, RequestID: "=HYPERLINK(\"x\")", Team: "+t", KeyID: "@k", Model: "-m",
		Backend: "\tb", Kind: "ok", SavingsPicoUSD: -1})
	var buf bytes.Buffer
	require.NoError(t, WriteCSV(testCtx(t), s, &buf, base, base.Add(time.Hour)))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, []string{"'=HYPERLINK(\"x\")", "", "", "'+t", "'@k", "'-m", "'\tb", "ok"}, rows[1][1:9])
	require.Equal(t, "-0.000000000001", rows[1][16], "numbers are left alone")
}

func TestParseGroup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Group
		err  bool
	}{
		{"team", ByTeam, false},
		{"model", ByModel, false},
		{"backend", ByBackend, false},
		{"key", ByKey, false},
		{"tenant", ByTenant, false},
		{"kind", ByKind, false},
		{"provider", ByProvider, false},
		{"", ByNothing, false},
		{" Team ", ByTeam, false},
		{"teams", "", true},
		{"key_id", "", true},
		{"total", "", true},
		{"team,model", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			g, err := ParseGroup(tc.in)
			if tc.err {
				require.ErrorIs(t, err, ErrUnknownGroup)
				require.Contains(t, err.Error(), strconv.Quote(tc.in))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, g)
		})
	}
}

func TestConcurrentAppends(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		one, two := b.open(t, 0, &clock{t: base})
		const n = 1000
		ctx := testCtx(t)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			s := one
			if i%2 == 1 {
				s = two
			}
			wg.Go(func() {
				errs <- s.Append(ctx, Entry{Time: base.Add(time.Duration(i) * time.Millisecond), RequestID: strconv.Itoa(i),
					Team: "team" + strconv.Itoa(i%3), PromptTokens: int64(i), CostPicoUSD: 1_000_000_000_001})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := Totals(ctx, one, base, base.Add(time.Hour), ByNothing)
		require.NoError(t, err)
		require.Equal(t, []Total{tot("", n, n*(n-1)/2, 0, 0, 0, n*1_000_000_000_001, "1000.000000001", 0, "0")}, got)
		byTeam, err := Totals(ctx, two, base, base.Add(time.Hour), ByTeam)
		require.NoError(t, err)
		require.Len(t, byTeam, 3)
		require.Equal(t, []int64{334, 333, 333}, []int64{byTeam[0].Requests, byTeam[1].Requests, byTeam[2].Requests})
		seen := map[string]bool{}
		for _, e := range collect(t, one, base, base.Add(time.Hour)) {
			require.False(t, seen[e.RequestID], "duplicate %s", e.RequestID)
			seen[e.RequestID] = true
		}
		require.Len(t, seen, n)
	})
}

func TestFormatParseUSD(t *testing.T) {
	for _, tc := range []struct {
		pico int64
		usd  string
	}{
		{0, "0"},
		{1, "0.000000000001"},
		{-1, "-0.000000000001"},
		{906_000_000, "0.000906"},
		{1_000_000_000_000, "1"},
		{-1_500_000_000_000, "-1.5"},
		{1_000_000_000_000_001, "1000.000000000001"},
		{123_456_789_012_345, "123.456789012345"},
		{math.MaxInt64, "9223372.036854775807"},
		{math.MinInt64, "-9223372.036854775808"},
	} {
		t.Run(tc.usd, func(t *testing.T) {
			require.Equal(t, tc.usd, FormatUSD(tc.pico))
			got, err := ParseUSD(tc.usd)
			require.NoError(t, err)
			require.Equal(t, tc.pico, got)
		})
	}
	for _, tc := range []struct {
		in   string
		pico int64
	}{{"+2", 2_000_000_000_000}, {".5", 500_000_000_000}, {"007.10", 7_100_000_000_000}, {"-0", 0}} {
		got, err := ParseUSD(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.pico, got, tc.in)
	}
	for _, bad := range []string{"", "-", ".", "1.", "1e3", "0.0000000000001", "9223372.036854775808",
		"-9223372.036854775809", "99999999999999999999", "1,5", " 1", "0x1", "--1", "1.-5", "NaN"} {
		_, err := ParseUSD(bad)
		require.ErrorIs(t, err, ErrBadAmount, bad)
	}
}

// The in-memory ledger keeps at most its bound, dropping the oldest.
func TestMemoryBound(t *testing.T) {
	m := NewMemory(0, nil)
	m.SetMaxEntries(3)
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		require.NoError(t, m.Append(context.Background(), Entry{Time: base.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint(i)}))
	}
	var got []string
	require.NoError(t, m.Range(context.Background(), base, base.Add(time.Hour), func(e Entry) error { got = append(got, e.RequestID); return nil }))
	require.Equal(t, []string{"2", "3", "4"}, got)
}
