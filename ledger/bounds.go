package ledger

import (
	"errors"
	"fmt"
	"time"
)

// MaxRangeDays bounds the UTC days one read of the ledger may cover
// (about a century), counted from the Unix epoch on: the Redis ledger
// holds nothing earlier (Append refuses it), so a range from the zero
// time up to now is within the bound. CheckRange applies it; the Redis
// store applies it, or a lower bound with shards (MaxRangeKeys), to
// every Range.
const MaxRangeDays = 36_600

// MaxRangeKeys bounds the day streams (UTC days × shards) one Redis Range
// probes with XLEN: with n shards a Range covers at most
// min(MaxRangeDays, MaxRangeKeys/n) days. Without the bound a range to
// 9999-12-31 would send millions of commands.
const MaxRangeKeys = 100_000

// ErrRangeTooLong is returned (wrapped, as a *RangeTooLongError) for a
// range that covers more UTC days than a read of the ledger may.
var ErrRangeTooLong = errors.New("ledger: range too long")

// RangeTooLongError is a range that covers more UTC days than MaxDays.
type RangeTooLongError struct {
	From, To time.Time
	// Days is the number of UTC days [From, To) touches, from the epoch
	// on (and, for the Redis store, what retention keeps).
	Days int64
	// MaxDays is the bound it passed.
	MaxDays int64
}

func (e *RangeTooLongError) Error() string {
	return fmt.Sprintf("%v: %s to %s covers %d UTC days (at most %d)", ErrRangeTooLong,
		e.From.UTC().Format(time.RFC3339), e.To.UTC().Format(time.RFC3339), e.Days, e.MaxDays)
}

// Unwrap makes errors.Is(err, ErrRangeTooLong) true.
func (e *RangeTooLongError) Unwrap() error { return ErrRangeTooLong }

// Days is the number of UTC days that [from, to) touches (a partial day
// counts), 0 when the range is empty. It is computed on Unix seconds,
// so it does not overflow for any range, unlike to.Sub(from), which
// saturates at about 292 years.
func Days(from, to time.Time) int64 {
	if !from.Before(to) {
		return 0
	}
	first := floorDiv(from.Unix(), secondsPerDay)
	last := floorDiv(to.Add(-time.Nanosecond).Unix(), secondsPerDay)
	return last - first + 1
}

const secondsPerDay = 24 * 60 * 60

// floorDiv is a / b rounded toward minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// CheckRange returns a *RangeTooLongError (wrapping ErrRangeTooLong) when
// [from, to), from raised to the Unix epoch, covers more than
// MaxRangeDays UTC days; nil otherwise, an empty range included.
func CheckRange(from, to time.Time) error {
	return checkDays(from, to, MaxRangeDays)
}

// checkDays is CheckRange with a bound of max days.
func checkDays(from, to time.Time, max int64) error {
	if from.Before(epoch) {
		from = epoch
	}
	if n := Days(from, to); n > max {
		return &RangeTooLongError{From: from, To: to, Days: n, MaxDays: max}
	}
	return nil
}
