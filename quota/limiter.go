package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scopes a limit applies to.
const (
	ScopeKey    = "key"
	ScopeTeam   = "team"
	ScopeTenant = "tenant"
)

// Mode is what a limit does when the store cannot be reached.
type Mode string

// Modes.
const (
	// FailOpen admits the request. Its Ticket reserved nothing, but its
	// settlement still records what it actually used (if the store is
	// back by then).
	FailOpen Mode = "fail_open"
	// FailClosed refuses it (503).
	FailClosed Mode = "fail_closed"
	// LocalOnly admits it for local and self-hosted backends only, which
	// cost no proprietary budget; it is settled as FailOpen's.
	LocalOnly Mode = "local_only"
)

// Limit is one configured limit. Zero fields are no limit.
type Limit struct {
	// Scope is key, team or tenant; ID names one of them, or "" for each
	// of them separately.
	Scope, ID         string
	RequestsPerMinute int64
	RequestsPerDay    int64
	TokensPerMinute   int64
	MicroUSDPerDay    int64
	MicroUSDPerMonth  int64
	// OnStoreError is this limit's failure mode; "" means FailOpen.
	OnStoreError Mode
}

// Subject is who a request is counted against.
type Subject struct {
	Tenant, Team, Key string
}

func (s Subject) id(scope string) string {
	switch scope {
	case ScopeKey:
		return s.Key
	case ScopeTeam:
		return s.Team
	}
	return s.Tenant
}

// Amounts are a request's usage: estimated at admission, actual at
// settlement. A request always counts as one request.
type Amounts struct {
	Tokens   int64 // prompt + completion
	MicroUSD int64
}

// Options configure a Limiter.
type Options struct {
	Store  Store
	Limits []Limit
	// ReservationTTL is how long a reservation holds before it is
	// released unsettled (a crashed replica). Default 10 minutes.
	ReservationTTL time.Duration
	// Breaker configures the circuit breaker that keeps requests from
	// waiting on a failing store (see BreakerOptions); the zero value is
	// its defaults. Settlements do not go through it.
	Breaker BreakerOptions
	// BudgetCacheFor is how long a subject's budget state, as the last
	// admission saw it, serves the policy input before it is read again.
	// Default 2 seconds.
	BudgetCacheFor time.Duration
	// Now is the clock for calendar periods; nil means time.Now (UTC).
	// The breaker has its own monotonic clock, Breaker.Clock.
	Now func() time.Time
}

// Limiter applies the configured limits to requests. It is safe for
// concurrent use.
type Limiter struct {
	o      Options
	errors atomic.Int64
	br     *breaker

	mu    sync.Mutex
	cache map[string]cachedStates // subject tag+scope+id -> states
}

type cachedStates struct {
	at     time.Time
	states []State
}

// New returns a Limiter.
func New(o Options) *Limiter {
	if o.ReservationTTL <= 0 {
		o.ReservationTTL = 10 * time.Minute
	}
	if o.BudgetCacheFor <= 0 {
		o.BudgetCacheFor = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter{o: o, br: newBreaker(o.Breaker), cache: map[string]cachedStates{}}
}

// Enabled reports whether any limit is configured.
func (l *Limiter) Enabled() bool { return l != nil && len(l.o.Limits) > 0 }

// checks are the counters a request of s touches, with amounts a.
func (l *Limiter) checks(s Subject, a Amounts) ([]Check, Mode) {
	now := l.o.Now().UTC()
	day, month := now.Format("2006-01-02"), now.Format("2006-01")
	var out []Check
	mode := FailOpen
	for _, lim := range l.o.Limits {
		id := s.id(lim.Scope)
		if id == "" || (lim.ID != "" && lim.ID != id) {
			continue
		}
		mode = stricter(mode, lim.OnStoreError)
		p := lim.Scope + ":" + id + ":"
		if lim.ID == "" {
			p = lim.Scope + ":" + id + ":each:"
		}
		add := func(on int64, c Check) {
			if on > 0 {
				c.Limit = on
				out = append(out, c)
			}
		}
		add(lim.RequestsPerMinute, Check{Key: p + "rpm", Kind: Rate, Metric: Requests, Period: time.Minute, Amount: 1})
		add(lim.RequestsPerDay, Check{Key: p + "rpd", Kind: Rate, Metric: Requests, Period: 24 * time.Hour, Amount: 1})
		add(lim.TokensPerMinute, Check{Key: p + "tpm", Kind: Rate, Metric: Tokens, Period: time.Minute, Amount: a.Tokens})
		add(lim.MicroUSDPerDay, Check{Key: p + "usd-day:" + day, Kind: Budget, Metric: USD, Period: 48 * time.Hour, Amount: a.MicroUSD})
		add(lim.MicroUSDPerMonth, Check{Key: p + "usd-month:" + month, Kind: Budget, Metric: USD, Period: 62 * 24 * time.Hour, Amount: a.MicroUSD})
	}
	return out, mode
}

// Denial is which limit refused a request, and until when: what the
// caller needs for its error without reading counter keys.
type Denial struct {
	// Scope is ScopeKey, ScopeTeam or ScopeTenant; ID the key id, team or
	// tenant it counts.
	Scope, ID string
	Metric    Metric
	// Limit is the allowance: requests, tokens, or micro-USD for a budget.
	Limit int64
	// Window is "minute" or "day" for a rate, "day" or "month" (UTC
	// calendar) for a budget.
	Window string
	// RetryAfter is when the request could fit: a rate's wait, or the
	// time until the budget's period renews.
	RetryAfter time.Duration
}

// denial describes the refused check of adm.
func (l *Limiter) denial(s Subject, adm Admission) *Denial {
	d := adm.Denied
	if d == nil {
		return nil
	}
	out := &Denial{Metric: d.Metric, Limit: d.Limit, RetryAfter: adm.RetryAfter}
	for _, lim := range l.o.Limits {
		if id := s.id(lim.Scope); id != "" && strings.HasPrefix(d.Key, lim.Scope+":"+id+":") {
			out.Scope, out.ID = lim.Scope, id
			break
		}
	}
	now := l.o.Now().UTC()
	switch {
	case d.Kind == Rate && d.Period == time.Minute:
		out.Window = "minute"
	case d.Kind == Rate:
		out.Window = "day"
	case strings.Contains(d.Key, ":usd-month:"):
		out.Window = "month"
		out.RetryAfter = time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Sub(now)
	default:
		out.Window = "day"
		out.RetryAfter = time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now)
	}
	return out
}

// Mode is what Admit does for s when the store fails: the strictest
// failure mode of the limits that apply to s, or FailOpen when none does
// (Admit then does not ask the store).
func (l *Limiter) Mode(s Subject) Mode {
	if !l.Enabled() {
		return FailOpen
	}
	checks, mode := l.checks(s, Amounts{})
	if len(checks) == 0 {
		return FailOpen
	}
	return mode
}

func stricter(a, b Mode) Mode {
	rank := map[Mode]int{"": 0, FailOpen: 0, LocalOnly: 1, FailClosed: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// tag puts all of a tenant's counters in one Redis Cluster hash slot: a
// request's key, team and tenant counters are then reserved atomically.
func tag(s Subject) string { return "t:" + s.Tenant }

// Result is an admission decision.
type Result struct {
	Allowed bool
	// Denied is the check that did not fit; its Metric says whether the
	// request hit a rate (requests, tokens) or a budget (usd).
	Denied *Check
	// Denial says which limit refused the request, for its error; nil
	// when admitted.
	Denial     *Denial
	RetryAfter time.Duration
	// States are the counters after the reservation, for headers.
	States []State
	// StoreErr is set when the store could not be reached and the limits'
	// failure mode decided instead (Mode).
	StoreErr error
	Mode     Mode
}

// LocalOnly reports whether only local and self-hosted backends may serve
// the request (the store failed under a local_only limit).
func (r *Result) LocalOnly() bool { return r.StoreErr != nil && r.Mode == LocalOnly }

// Ticket is an admitted request's reservation; Settle it exactly once. A
// request admitted while the store failed (fail_open, local_only) also
// has one, which reserved nothing: its settlement records the whole of
// what it used.
type Ticket struct {
	l       *Limiter
	subject Subject
	id      string
	checks  []Check
	settled atomic.Bool
}

// Admit reserves a request's estimated amounts against every limit that
// applies to s, atomically. A nil Ticket with an allowed Result means no
// limit applies. When the store fails and the limits' mode admits the
// request anyway (Result.StoreErr and Mode say so), the Ticket reserved
// nothing, and its Settle records the actual usage in full.
func (l *Limiter) Admit(ctx context.Context, s Subject, est Amounts) (*Ticket, *Result) {
	checks, mode := l.checks(s, est)
	if len(checks) == 0 {
		return nil, &Result{Allowed: true}
	}
	id := newID()
	adm, err := l.call(func() (Admission, error) {
		return l.o.Store.Reserve(ctx, tag(s), id, checks, l.o.ReservationTTL)
	})
	if err != nil {
		r := &Result{Allowed: mode != FailClosed, StoreErr: err, Mode: mode}
		if !r.Allowed {
			return nil, r
		}
		// Settled under the same id: if the reservation was made after
		// all (its reply lost), the store settles it; if not, the checks'
		// zero Amounts tell it that nothing was taken.
		unreserved := make([]Check, len(checks))
		for i, c := range checks {
			c.Amount = 0
			unreserved[i] = c
		}
		return &Ticket{l: l, subject: s, id: id, checks: unreserved}, r
	}
	l.remember(s, adm.States)
	r := &Result{Allowed: adm.Allowed, Denied: adm.Denied, RetryAfter: adm.RetryAfter, States: adm.States}
	if !adm.Allowed {
		r.Denial = l.denial(s, adm)
		return nil, r
	}
	return &Ticket{l: l, subject: s, id: id, checks: checks}, r
}

// Settle records the request's actual usage and releases the rest of its
// reservation. Only the first call counts; a nil Ticket does nothing.
func (t *Ticket) Settle(ctx context.Context, actual Amounts) error {
	if t == nil || !t.settled.CompareAndSwap(false, true) {
		return nil
	}
	amounts := make(map[string]int64, len(t.checks))
	for _, c := range t.checks {
		switch c.Metric {
		case Requests:
			amounts[c.Key] = 1
		case Tokens:
			amounts[c.Key] = actual.Tokens
		case USD:
			amounts[c.Key] = actual.MicroUSD
		}
	}
	// Spend must not be lost to a blip: the settlement skips the breaker
	// and tries a few times, within ctx. The store settles an id once, so
	// a retry after a lost reply cannot count twice.
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*4 {
		if err = t.l.o.Store.Settle(ctx, tag(t.subject), t.id, t.checks, amounts); err == nil || !errors.Is(err, ErrStore) {
			return err
		}
		t.l.errors.Add(1)
		if attempt == 2 {
			break // no wait after the last attempt
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
	return err
}

// call runs one store operation behind the circuit breaker (see
// BreakerOptions): while it is open, the operation fails at once with
// ErrStore. Only ErrStore failures count against the store.
func (l *Limiter) call(f func() (Admission, error)) (Admission, error) {
	probe, ok := l.br.allow()
	if !ok {
		l.errors.Add(1)
		return Admission{}, fmt.Errorf("%w: failing; not asked again for a moment", ErrStore)
	}
	adm, err := f()
	failed := err != nil && errors.Is(err, ErrStore)
	if failed {
		l.errors.Add(1)
	}
	l.br.done(probe, failed)
	return adm, err
}

// Remaining is what a subject's budgets have left, for the policy input. A
// nil field is a budget that does not exist. Rates (requests and tokens
// per minute) are not budgets: running out of them is a 429 that passes
// with time, not a reason to route elsewhere.
type Remaining struct {
	KeyRemainingUSD, TeamRemainingUSD *float64
}

// Remaining reads what s has left: from the last admission of the same
// subject when it is recent, else from the store. A store failure gives
// an empty Remaining.
func (l *Limiter) Remaining(ctx context.Context, s Subject) Remaining {
	checks, _ := l.checks(s, Amounts{})
	var b Remaining
	if len(checks) == 0 {
		return b
	}
	states, ok := l.cached(s)
	if !ok {
		var err error
		_, err = l.call(func() (Admission, error) {
			var e error
			states, e = l.o.Store.Peek(ctx, tag(s), checks)
			return Admission{}, e
		})
		if err != nil {
			return b
		}
		l.remember(s, states)
	}
	keyPrefix, teamPrefix := ScopeKey+":"+s.Key+":", ScopeTeam+":"+s.Team+":"
	for _, st := range states {
		if st.Metric != USD {
			continue
		}
		var usd **float64
		switch {
		case s.Key != "" && strings.HasPrefix(st.Key, keyPrefix):
			usd = &b.KeyRemainingUSD
		case s.Team != "" && strings.HasPrefix(st.Key, teamPrefix):
			usd = &b.TeamRemainingUSD
		default:
			continue
		}
		v := float64(st.Remaining) / 1e6
		if *usd == nil || v < **usd {
			*usd = &v
		}
	}
	return b
}

func (l *Limiter) cacheKey(s Subject) string { return s.Tenant + "\x00" + s.Team + "\x00" + s.Key }

func (l *Limiter) remember(s Subject, states []State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cache) > 100_000 {
		clear(l.cache) // bounded; it refills from the store
	}
	l.cache[l.cacheKey(s)] = cachedStates{at: time.Now(), states: states}
}

func (l *Limiter) cached(s Subject) ([]State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cache[l.cacheKey(s)]
	if !ok || time.Since(c.at) > l.o.BudgetCacheFor {
		return nil, false
	}
	return c.states, true
}

// Usage reads the counters of one subject, for the admin API.
func (l *Limiter) Usage(ctx context.Context, s Subject) ([]State, error) {
	checks, _ := l.checks(s, Amounts{})
	if len(checks) == 0 {
		return nil, nil
	}
	var states []State
	_, err := l.call(func() (Admission, error) {
		var e error
		states, e = l.o.Store.Peek(ctx, tag(s), checks)
		return Admission{}, e
	})
	return states, err
}

// Reset zeroes the counters of one subject, for the admin API.
func (l *Limiter) Reset(ctx context.Context, s Subject) error {
	checks, _ := l.checks(s, Amounts{})
	if len(checks) == 0 {
		return nil
	}
	_, err := l.call(func() (Admission, error) { return Admission{}, l.o.Store.Reset(ctx, tag(s), checks) })
	l.mu.Lock()
	delete(l.cache, l.cacheKey(s))
	l.mu.Unlock()
	return err
}

// Status is what /readyz shows.
type Status struct {
	// Degraded: the breaker is not closed, or the last store call failed.
	Degraded bool `json:"degraded"`
	// StoreErrors counts store calls that failed or that the open breaker
	// failed at once, and failed settlement attempts.
	StoreErrors int64 `json:"store_errors"`
	// Breaker is the breaker's state.
	Breaker BreakerState `json:"breaker"`
	// WindowCalls and WindowFailures are the store calls, and the failed
	// ones, in the breaker's rolling window.
	WindowCalls    int `json:"window_calls"`
	WindowFailures int `json:"window_failures"`
}

// Pinger is a Store that can be asked whether it is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Probe asks a degraded store whether it is back, so that readiness
// recovers without traffic. It is a call like any other: while the
// breaker is open it does nothing; half-open, it is the probe when no
// other call is.
func (l *Limiter) Probe(ctx context.Context) {
	p, ok := l.o.Store.(Pinger)
	if !ok || !l.br.status().degraded {
		return
	}
	probe, ok := l.br.allow()
	if !ok {
		return
	}
	err := p.Ping(ctx)
	if err != nil {
		l.errors.Add(1)
	}
	l.br.done(probe, err != nil)
}

// Status reports the breaker's state and how often the store failed.
func (l *Limiter) Status() Status {
	b := l.br.status()
	return Status{Degraded: b.degraded, StoreErrors: l.errors.Load(), Breaker: b.state, WindowCalls: b.calls, WindowFailures: b.failures}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
