package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Filter keeps the entries whose fields equal every non-empty field of
// the filter; the zero Filter keeps every entry.
type Filter struct {
	Team, Tenant, Model, Kind, KeyID, Backend, Provider string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Entry) bool {
	return (f.Team == "" || f.Team == e.Team) &&
		(f.Tenant == "" || f.Tenant == e.Tenant) &&
		(f.Model == "" || f.Model == e.Model) &&
		(f.Kind == "" || f.Kind == e.Kind) &&
		(f.KeyID == "" || f.KeyID == e.KeyID) &&
		(f.Backend == "" || f.Backend == e.Backend) &&
		(f.Provider == "" || f.Provider == e.Provider)
}

// ReportQuery is what Report computes.
type ReportQuery struct {
	// From and To bound the entries: From <= Time < To.
	From, To time.Time
	// Interval is the series' bucket: time.Hour or 24*time.Hour, aligned
	// on UTC hours and days. Buckets cover [From, To) with the first one
	// starting at From truncated to the interval.
	Interval time.Duration
	// StackBy splits the series, one per value (team, model, kind…).
	StackBy Group
	// Filter keeps only some entries (everything but Dimensions).
	Filter Filter
	// Top is how many top spenders are listed per dimension. Default 10.
	Top int
	// MaxSeries is how many stacked series the report keeps; the
	// cheapest of the others are summed into one series with Other set.
	// Default 8.
	MaxSeries int
}

// MaxBuckets bounds a report's series: more buckets than this is an error
// wrapping ErrTooManyBuckets (a year of days, or two months of hours).
const MaxBuckets = 1500

// maxDimensionValues bounds how many distinct values a report lists per
// dimension for the page's filters.
const maxDimensionValues = 500

// ErrTooManyBuckets is returned (wrapped) by Report for a range that
// holds more than MaxBuckets intervals.
var ErrTooManyBuckets = errors.New("ledger: too many buckets")

// Report is the cost dashboard's view of a time range: the filtered
// entries' total, a series per stacked group, the top spenders per
// dimension, totals by kind (local share) and by team (savings), and the
// values seen in the range for each dimension (unfiltered, for choosing
// a filter).
type Report struct {
	Total Total
	// Buckets are the start of each interval, in order.
	Buckets []time.Time
	// Series are one per StackBy value, most expensive first; the last
	// one has Other set when some were merged.
	Series []Series
	// Top lists the most expensive values of ByTeam, ByKey, ByTenant and
	// ByModel, at most Top each, most expensive first.
	Top map[Group][]Total
	// ByKind is the total per backend kind (local, selfhosted,
	// proprietary), most expensive first.
	ByKind []Total
	// ByTeam is the total per team, most expensive first: each team's
	// savings against its reference model.
	ByTeam []Total
	// Dimensions are the distinct values seen in the range, before the
	// filter, sorted, per dimension (team, tenant, model, kind, key,
	// backend, provider), at most 500 each.
	Dimensions map[Group][]string
}

// Series is one stacked group's totals per bucket.
type Series struct {
	// Group is the StackBy value ("" for entries without one).
	Group string
	// Other is true for the series that sums the groups past MaxSeries.
	Other bool
	// Groups is how many groups the series sums (1 unless Other).
	Groups int
	// Total is the series' sum over every bucket.
	Total Total
	// Points are one Total per bucket of Report.Buckets.
	Points []Total
}

// reportDimensions are the dimensions the page can filter by.
var reportDimensions = []Group{ByTeam, ByTenant, ByModel, ByKind, ByKey, ByBackend, ByProvider}

// topDimensions are the dimensions whose top spenders a report lists.
var topDimensions = []Group{ByTeam, ByKey, ByTenant, ByModel}

// Buckets returns the starts of the intervals covering [from, to), from
// truncated to the interval (UTC), or an error wrapping
// ErrTooManyBuckets, for any from and to: the range is compared with
// MaxBuckets intervals before it is turned into a count, so that a span
// past what a time.Duration holds (about 292 years, where to.Sub
// saturates) is too many buckets, never a count that overflows.
func Buckets(from, to time.Time, interval time.Duration) ([]time.Time, error) {
	if interval != time.Hour && interval != day {
		return nil, fmt.Errorf("ledger: interval %v is neither an hour nor a day", interval)
	}
	start := from.UTC().Truncate(interval)
	if !to.After(start) {
		return nil, nil
	}
	// MaxBuckets days fit a Duration many times over; a saturated Sub
	// (to - start past 292 years) is larger still.
	span := to.Sub(start)
	if span <= 0 || span > time.Duration(MaxBuckets)*interval {
		return nil, fmt.Errorf("%w: more than %d intervals of %v from %s to %s", ErrTooManyBuckets,
			MaxBuckets, interval, start.Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	n := int((span + interval - 1) / interval) // span <= MaxBuckets intervals: no overflow
	if n <= 0 || n > MaxBuckets {
		return nil, fmt.Errorf("%w: %d intervals of %v (at most %d)", ErrTooManyBuckets, n, interval, MaxBuckets)
	}
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i) * interval)
	}
	return out, nil
}

// RunReport reads the entries of [q.From, q.To) once and computes their
// Report. It is an error wrapping ErrUnknownGroup for a StackBy that is
// not a Group, ErrTooManyBuckets for too long a range at that interval,
// and ErrOverflow for a sum that does not fit an int64.
func RunReport(ctx context.Context, s Store, q ReportQuery) (*Report, error) {
	if !q.StackBy.valid() {
		return nil, fmt.Errorf("%w %q", ErrUnknownGroup, string(q.StackBy))
	}
	if q.Top <= 0 {
		q.Top = 10
	}
	if q.MaxSeries <= 0 {
		q.MaxSeries = 8
	}
	buckets, err := Buckets(q.From, q.To, q.Interval)
	if err != nil {
		return nil, err
	}
	var start time.Time
	if len(buckets) > 0 {
		start = buckets[0]
	}
	r := &Report{Buckets: buckets, Top: map[Group][]Total{}, Dimensions: map[Group][]string{}}
	series := map[string]*Series{}
	top := map[Group]map[string]*Total{}
	for _, g := range topDimensions {
		top[g] = map[string]*Total{}
	}
	kinds, teams := map[string]*Total{}, map[string]*Total{}
	seen := map[Group]map[string]bool{}
	for _, g := range reportDimensions {
		seen[g] = map[string]bool{}
	}
	err = s.Range(ctx, q.From, q.To, func(e Entry) error {
		for _, g := range reportDimensions {
			if m := seen[g]; len(m) < maxDimensionValues {
				m[g.of(&e)] = true
			}
		}
		if !q.Filter.Match(&e) {
			return nil
		}
		i := int(e.Time.Sub(start) / q.Interval)
		if i < 0 || i >= len(buckets) {
			return nil // outside [From, To): a store that returned too much
		}
		g := q.StackBy.of(&e)
		sr := series[g]
		if sr == nil {
			sr = &Series{Group: g, Groups: 1, Points: make([]Total, len(buckets))}
			series[g] = sr
		}
		ok := r.Total.add(&e) && sr.Total.add(&e) && sr.Points[i].add(&e) &&
			sum(kinds, e.Kind).add(&e) && sum(teams, e.Team).add(&e)
		for _, d := range topDimensions {
			ok = ok && sum(top[d], d.of(&e)).add(&e)
		}
		if !ok {
			return fmt.Errorf("%w: report of %s", ErrOverflow, q.From.Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range reportDimensions {
		vals := make([]string, 0, len(seen[g]))
		for v := range seen[g] {
			vals = append(vals, v)
		}
		slices.Sort(vals)
		r.Dimensions[g] = vals
	}
	r.Total.finish()
	for _, d := range topDimensions {
		all := sorted(top[d])
		r.Top[d] = all[:min(len(all), q.Top)]
	}
	r.ByKind, r.ByTeam = sorted(kinds), sorted(teams)
	if r.Series, err = stack(series, q.MaxSeries, len(buckets)); err != nil {
		return nil, err
	}
	return r, nil
}

// stack orders the series by cost and merges those past max into one.
func stack(m map[string]*Series, max, buckets int) ([]Series, error) {
	all := make([]*Series, 0, len(m))
	for _, s := range m {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *Series) int {
		if c := cmp.Compare(b.Total.CostPicoUSD, a.Total.CostPicoUSD); c != 0 {
			return c
		}
		return cmp.Compare(a.Group, b.Group)
	})
	if len(all) > max {
		other := &Series{Other: true, Points: make([]Total, buckets)}
		for _, s := range all[max-1:] {
			other.Groups++
			ok := other.Total.merge(&s.Total)
			for i := range s.Points {
				ok = ok && other.Points[i].merge(&s.Points[i])
			}
			if !ok {
				return nil, fmt.Errorf("%w: merged series", ErrOverflow)
			}
		}
		all = append(all[:max-1], other)
	}
	out := make([]Series, len(all))
	for i, s := range all {
		s.Total.Group = s.Group
		s.Total.finish()
		for j := range s.Points {
			s.Points[j].finish()
		}
		out[i] = *s
	}
	return out, nil
}

// sum is m's total for key g, created empty.
func sum(m map[string]*Total, g string) *Total {
	t := m[g]
	if t == nil {
		t = &Total{Group: g}
		m[g] = t
	}
	return t
}

// sorted returns m's totals, finished, most expensive first, then by
// group value.
func sorted(m map[string]*Total) []Total {
	out := make([]Total, 0, len(m))
	for _, t := range m {
		t.finish()
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Total) int {
		if c := cmp.Compare(b.CostPicoUSD, a.CostPicoUSD); c != 0 {
			return c
		}
		return cmp.Compare(a.Group, b.Group)
	})
	return out
}
