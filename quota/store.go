// Package quota enforces request, token and spend limits per virtual key,
// team and tenant: reserve at admission, settle with the actual usage
// after the response, atomically across gateway replicas when the Store is
// Redis.
//
// # How far a budget can be overspent
//
// A request is admitted only when the budget's spent plus reserved plus
// its estimate fits the limit. Its settlement replaces what it still
// holds with what it actually used, in full, even past the limit: spent
// may then exceed the limit, and no request fits until the period ends.
// So, with K requests in flight (admitted and not yet settled) at the
// last admission that fit, spend passes the budget by at most the sum of
// their (actual - reserved), and never when each of them used no more
// than it reserved. "Reserved" is what a request still holds when it
// settles: nothing for a reservation that expired first (ReservationTTL)
// and for a request admitted while the store failed (fail_open,
// local_only; such requests count among the K), whose whole actual usage
// counts.
//
// Rates (requests and tokens per minute) are settled the same way: a
// request that used more tokens than it reserved pushes the counter's
// next admission further out.
package quota

import (
	"context"
	"errors"
	"time"
)

// Kind is how a counter counts.
type Kind int

const (
	// Rate is a rolling rate (GCRA): Limit per Period, where a new
	// request needs room for its Amount. Used for requests and tokens per
	// minute or per day.
	Rate Kind = iota
	// Budget is a calendar-period total: spent plus reserved may not pass
	// Limit. The period is part of the counter's Key (for example
	// "team:search:usd:2026-11"); Period is only how long the counter is
	// kept. Used for USD per day and per month.
	Budget
)

// Metric names what a counter counts, for headers and errors.
type Metric string

// Metrics.
const (
	Requests Metric = "requests"
	Tokens   Metric = "tokens"
	USD      Metric = "usd" // amounts in micro-USD
)

// Check is one limit applied to one request.
type Check struct {
	// Key names the counter, unique within its tag, e.g.
	// "team:search:tpm" or "key:k1:usd-month:2026-11".
	Key    string
	Kind   Kind
	Metric Metric
	// Limit is the allowance: requests, tokens or micro-USD.
	Limit int64
	// Period is a Rate's window, or how long a Budget counter lives
	// (beyond its calendar period).
	Period time.Duration
	// Amount is what this request reserves: 1 request, its estimated
	// tokens, its estimated micro-USD.
	Amount int64
}

// State is a counter after an operation.
type State struct {
	Key    string `json:"key"`
	Metric Metric `json:"metric"`
	Limit  int64  `json:"limit"`
	// Remaining is what is left now (never negative).
	Remaining int64 `json:"remaining"`
	// Reset is how long until the counter is full again (Rate) or its
	// period ends (Budget: the caller knows the calendar; zero here).
	Reset time.Duration `json:"reset_ns"`
}

// Admission is the answer to a reservation.
type Admission struct {
	Allowed bool
	// Denied is the first check that did not fit, when not Allowed.
	Denied *Check
	// RetryAfter is when a denied Rate check would fit; zero for a Budget
	// (it fits again next period).
	RetryAfter time.Duration
	// States are every check's counter after the operation, in order.
	States []State
}

// ErrStore wraps a failure to reach or use the store.
var ErrStore = errors.New("quota store unavailable")

// Store keeps the counters. Implementations: Memory (one process) and
// Redis (shared by every replica).
type Store interface {
	// Reserve applies every check atomically, all or none: a request
	// that does not fit one limit takes nothing from the others. tag
	// groups the counters of one decision (one Redis Cluster hash slot).
	// The reservation is remembered under id for ttl; if it is not
	// settled by then it is released.
	Reserve(ctx context.Context, tag, id string, checks []Check, ttl time.Duration) (Admission, error)
	// Settle replaces what reservation id took with actual amounts, per
	// check Key (a key absent from actual settles at zero). Only the
	// first Settle of an id counts. A reservation that already expired
	// still records its actual spend. When the store no longer knows
	// what id took (its record expired, or it was never reserved), a
	// Rate check is taken to have reserved its Amount: so an id that was
	// never reserved, settled with checks whose Amounts are zero,
	// records the actual amounts in full.
	Settle(ctx context.Context, tag, id string, checks []Check, actual map[string]int64) error
	// Peek reads counters without changing them.
	Peek(ctx context.Context, tag string, checks []Check) ([]State, error)
	// Reset zeroes the counters of checks (spend, reservations, rates).
	Reset(ctx context.Context, tag string, checks []Check) error
}
