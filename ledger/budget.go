package ledger

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Budget is a spend limit over a UTC calendar period, as the quotas
// enforce it.
type Budget struct {
	// Scope is ByTeam, ByTenant or ByKey.
	Scope Group
	// ID is the team, tenant or key id; empty applies the budget to each
	// value of the scope separately (those with spend in the period).
	ID string
	// Period is PeriodDay or PeriodMonth.
	Period string
	// LimitPicoUSD is the allowance per period.
	LimitPicoUSD int64
}

// The periods a Budget renews on: the UTC calendar day or month.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// BudgetStatus is one budget's current period: what is spent, what is
// left and, at the period's average rate so far, where it will end.
type BudgetStatus struct {
	Scope  string `json:"scope"`
	ID     string `json:"id"`
	Period string `json:"period"`
	// Start and End bound the current period.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Requests is the number of entries counted.
	Requests int64 `json:"requests"`
	// LimitUSD, SpentUSD and RemainingUSD (never negative) are exact
	// decimal USD; OverUSD is what was spent past the limit.
	LimitUSD     string `json:"limit_usd"`
	SpentUSD     string `json:"spent_usd"`
	RemainingUSD string `json:"remaining_usd"`
	OverUSD      string `json:"over_usd"`
	// RateUSDPerDay is the spend per day so far this period; ForecastUSD
	// is the spend at the end of the period at that rate (spent +
	// rate × time left), rounded to the pico-USD.
	RateUSDPerDay string `json:"rate_usd_per_day"`
	ForecastUSD   string `json:"forecast_usd"`
	// ExhaustedAt is when the spend reached the limit, or will at that
	// rate before the period ends; nil when it will not.
	ExhaustedAt *time.Time `json:"exhausted_at"`
	// Burn is the budget left (limit minus cumulative spend, which may go
	// below zero) at the period's start, at the end of each hour (day
	// budgets) or day (month budgets) so far, and now.
	Burn []BurnPoint `json:"burn"`

	LimitPicoUSD, SpentPicoUSD, ForecastPicoUSD int64 `json:"-"`
}

// BurnPoint is the budget left at a time.
type BurnPoint struct {
	Time         time.Time `json:"t"`
	RemainingUSD string    `json:"remaining_usd"`

	RemainingPicoUSD int64 `json:"-"`
}

// PeriodBounds is the UTC calendar day or month holding now.
func PeriodBounds(period string, now time.Time) (start, end time.Time) {
	now = now.UTC()
	if period == PeriodDay {
		start = dayStart(now)
		return start, start.Add(day)
	}
	start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

type budgetRun struct {
	b          *Budget
	id         string
	start, end time.Time
	step       time.Duration
	requests   int64
	spent      int64
	perStep    []int64
	exhausted  *time.Time
}

// BudgetReport reads the current period's entries once and returns the
// status of every budget at now: one per budget with an ID, one per value
// with spend for a budget without. Most consumed first (spent over
// limit), then by scope and id. It is an error wrapping ErrOverflow for a
// sum that does not fit an int64.
func BudgetReport(ctx context.Context, s Store, now time.Time, budgets []Budget) ([]BudgetStatus, error) {
	now = now.UTC()
	var runs []*budgetRun
	each := map[int]map[string]*budgetRun{}
	from := now
	newRun := func(b *Budget, id string) *budgetRun {
		r := &budgetRun{b: b, id: id, step: time.Hour}
		r.start, r.end = PeriodBounds(b.Period, now)
		if b.Period != PeriodDay {
			r.step = day
		}
		r.perStep = make([]int64, int(now.Sub(r.start)/r.step)+1)
		runs = append(runs, r)
		return r
	}
	for i := range budgets {
		b := &budgets[i]
		if !b.Scope.valid() || b.Scope == ByNothing || b.LimitPicoUSD <= 0 {
			continue
		}
		if start, _ := PeriodBounds(b.Period, now); start.Before(from) {
			from = start
		}
		if b.ID != "" {
			newRun(b, b.ID)
		} else {
			each[i] = map[string]*budgetRun{}
		}
	}
	err := s.Range(ctx, from, now.Add(time.Nanosecond), func(e Entry) error {
		t := e.Time.UTC()
		for i := range budgets {
			b := &budgets[i]
			m, isEach := each[i]
			if !isEach {
				continue
			}
			if id := b.Scope.of(&e); id != "" && m[id] == nil {
				if start, _ := PeriodBounds(b.Period, now); !t.Before(start) {
					m[id] = newRun(b, id)
				}
			}
		}
		for _, r := range runs {
			if t.Before(r.start) || t.After(now) || r.b.Scope.of(&e) != r.id {
				continue
			}
			i := int(t.Sub(r.start) / r.step)
			if !add(&r.spent, e.CostPicoUSD) || !add(&r.perStep[i], e.CostPicoUSD) {
				return fmt.Errorf("%w: budget of %s %q", ErrOverflow, r.b.Scope, r.id)
			}
			r.requests++
			if r.exhausted == nil && r.spent >= r.b.LimitPicoUSD {
				at := t
				r.exhausted = &at
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]BudgetStatus, 0, len(runs))
	for _, r := range runs {
		out = append(out, r.status(now))
	}
	slices.SortFunc(out, func(a, b BudgetStatus) int {
		// spent/limit, highest first, compared without overflow
		ra := float64(a.SpentPicoUSD) / float64(a.LimitPicoUSD)
		rb := float64(b.SpentPicoUSD) / float64(b.LimitPicoUSD)
		if c := cmp.Compare(rb, ra); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Scope, b.Scope); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (r *budgetRun) status(now time.Time) BudgetStatus {
	limit := r.b.LimitPicoUSD
	st := BudgetStatus{
		Scope: string(r.b.Scope), ID: r.id, Period: r.b.Period, Start: r.start, End: r.end, Requests: r.requests,
		LimitPicoUSD: limit, SpentPicoUSD: r.spent, ExhaustedAt: r.exhausted,
	}
	elapsed, left := now.Sub(r.start), r.end.Sub(now)
	rate := 0.0 // pico-USD per nanosecond
	if elapsed > 0 {
		rate = float64(r.spent) / float64(elapsed)
	}
	st.ForecastPicoUSD = clampPico(float64(r.spent) + rate*float64(left))
	if st.ExhaustedAt == nil && rate > 0 && st.ForecastPicoUSD > limit {
		at := now.Add(time.Duration(float64(limit-r.spent) / rate))
		st.ExhaustedAt = &at
	}
	st.LimitUSD, st.SpentUSD = FormatUSD(limit), FormatUSD(r.spent)
	st.RemainingUSD, st.OverUSD = FormatUSD(max(limit-r.spent, 0)), FormatUSD(max(r.spent-limit, 0))
	st.RateUSDPerDay = FormatUSD(clampPico(rate * float64(day)))
	st.ForecastUSD = FormatUSD(st.ForecastPicoUSD)

	point := func(t time.Time, cum int64) {
		st.Burn = append(st.Burn, BurnPoint{Time: t, RemainingPicoUSD: limit - cum, RemainingUSD: FormatUSD(limit - cum)})
	}
	point(r.start, 0)
	cum := int64(0)
	for i, v := range r.perStep {
		cum += v // cannot overflow: r.spent did not
		end := r.start.Add(time.Duration(i+1) * r.step)
		if end.After(now) {
			break
		}
		point(end, cum)
	}
	if last := st.Burn[len(st.Burn)-1].Time; now.After(last) {
		point(now, r.spent)
	}
	return st
}

// clampPico rounds a float pico-USD amount into an int64.
func clampPico(v float64) int64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(math.Round(v))
}
