package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Total is the sum over one group's entries.
type Total struct {
	// Group is the group's value, e.g. the team's name ("" for entries
	// without one, and for the single total).
	Group string `json:"group"`
	// Requests is the number of entries.
	Requests int64 `json:"requests"`
	// PromptTokens, CompletionTokens, CachedTokens and CacheWriteTokens
	// are the summed usage.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	// CostUSD and SavingsUSD are CostPicoUSD and SavingsPicoUSD as exact
	// decimal USD (FormatUSD), e.g. "0.000906".
	CostUSD    string `json:"cost_usd"`
	SavingsUSD string `json:"savings_usd"`
	// CostPicoUSD and SavingsPicoUSD are the exact sums in pico-USD.
	CostPicoUSD    int64 `json:"-"`
	SavingsPicoUSD int64 `json:"-"`
}

// ErrOverflow is returned (wrapped) by Totals when a sum does not fit an
// int64 (about 9.2 million USD in pico-USD), rather than a wrong total.
var ErrOverflow = errors.New("ledger: total overflows int64")

// Totals sums the entries with from <= Time < to by group, sorted by cost,
// highest first, then by group value. It is an error wrapping
// ErrUnknownGroup for a by that is not a Group constant, and one wrapping
// ErrOverflow for a sum that does not fit an int64.
func Totals(ctx context.Context, s Store, from, to time.Time, by Group) ([]Total, error) {
	if !by.valid() {
		return nil, fmt.Errorf("%w %q", ErrUnknownGroup, string(by))
	}
	sums := map[string]*Total{}
	err := s.Range(ctx, from, to, func(e Entry) error {
		g := by.of(&e)
		if !sum(sums, g).add(&e) {
			return fmt.Errorf("%w: group %q", ErrOverflow, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sorted(sums), nil
}

// add counts e in t, or reports false on overflow (t is then partly
// updated and must not be used).
func (t *Total) add(e *Entry) bool {
	return add(&t.Requests, 1) &&
		add(&t.PromptTokens, e.PromptTokens) &&
		add(&t.CompletionTokens, e.CompletionTokens) &&
		add(&t.CachedTokens, e.CachedTokens) &&
		add(&t.CacheWriteTokens, e.CacheWriteTokens) &&
		add(&t.CostPicoUSD, e.CostPicoUSD) &&
		add(&t.SavingsPicoUSD, e.SavingsPicoUSD)
}

// merge adds o's sums to t, or reports false on overflow.
func (t *Total) merge(o *Total) bool {
	return add(&t.Requests, o.Requests) &&
		add(&t.PromptTokens, o.PromptTokens) &&
		add(&t.CompletionTokens, o.CompletionTokens) &&
		add(&t.CachedTokens, o.CachedTokens) &&
		add(&t.CacheWriteTokens, o.CacheWriteTokens) &&
		add(&t.CostPicoUSD, o.CostPicoUSD) &&
		add(&t.SavingsPicoUSD, o.SavingsPicoUSD)
}

// finish sets the decimal USD fields from the pico-USD sums.
func (t *Total) finish() {
	t.CostUSD, t.SavingsUSD = FormatUSD(t.CostPicoUSD), FormatUSD(t.SavingsPicoUSD)
}

// add adds n to *dst, or reports false (leaving *dst) on overflow.
func add(dst *int64, n int64) bool {
	s := *dst + n
	if (n > 0 && s < *dst) || (n < 0 && s > *dst) {
		return false
	}
	*dst = s
	return true
}
