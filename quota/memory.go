package quota

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"time"
)

// This file holds the in-process Store and the arithmetic both stores
// share, so that Memory and Redis answer identically:
//
//   - time is integer microseconds (Redis TIME inside the scripts, the
//     injected clock here);
//   - a Rate is GCRA with the whole Limit as burst. The counter keeps how
//     far its theoretical arrival time (TAT) is ahead of the time it was
//     written, in rate units: nanoseconds, or microseconds for periods over
//     maxUnits ns (about 26 days). Amount n costs n*Period/Limit units,
//     rounded down (so a fresh counter admits exactly Limit), computed here
//     in 128 bits; the scripts only add and compare. A request fits while
//     max(TAT, now) + cost - now <= Period;
//   - a Budget keeps spent, reserved and the open reservations
//     (id -> amount, expiry); expired ones are released at the start of any
//     operation that touches the counter.

// settleRetention is how long, beyond the reservation's ttl, a reservation
// record and then its settled marker are kept: a repeated Settle within
// that time is a no-op, and a Rate settled that late still finds what its
// reservation took.
const settleRetention = 10 * time.Minute

// maxUnits caps rate periods and costs, and maxAhead how far a TAT may run
// ahead, so that every sum the Lua scripts make stays an exact integer in a
// Lua number (a float64, exact below 2^53). A Unix time in µs is about
// 2^51.
const (
	maxUnits int64 = 1 << 51
	maxAhead int64 = 1 << 52
)

// prepared is a Check with its integer arithmetic done once.
type prepared struct {
	c      Check
	amount int64 // Amount, never negative
	// Rate only:
	unitNS  int64 // nanoseconds per rate unit: 1, or 1000 for long periods
	periodU int64 // Period in units, at most maxUnits
	cost    int64 // what amount costs, in units
	over    bool  // Amount > Limit, which never fits
	// Budget only:
	periodMS int64 // how long the counter lives, ms; 0: forever
}

// unitsPerMicro is how many rate units one microsecond of time is.
func (p prepared) unitsPerMicro() int64 { return 1000 / p.unitNS }

// prepare validates checks and computes what both stores need. Keys must be
// distinct within one call (Settle's actual amounts are keyed by Key).
func prepare(checks []Check) ([]prepared, error) {
	ps := make([]prepared, len(checks))
	for i, c := range checks {
		for j := 0; j < i; j++ {
			if checks[j].Key == c.Key {
				return nil, fmt.Errorf("quota: check key %q appears twice in one call", c.Key)
			}
		}
		p := prepared{c: c, amount: max(c.Amount, 0)}
		switch c.Kind {
		case Rate:
			if c.Period < time.Microsecond {
				return nil, fmt.Errorf("quota: rate %q needs a period of at least 1µs, got %v", c.Key, c.Period)
			}
			p.unitNS, p.periodU = 1, int64(c.Period)
			if p.periodU > maxUnits {
				p.unitNS, p.periodU = 1000, min(c.Period.Microseconds(), maxUnits)
			}
			p.over = p.amount > c.Limit
			p.cost = rateCost(p.amount, p.periodU, c.Limit)
		case Budget:
			if c.Period > 0 {
				p.periodMS = c.Period.Milliseconds()
				if c.Period%time.Millisecond != 0 {
					p.periodMS++
				}
			}
		default:
			return nil, fmt.Errorf("quota: check %q has unknown kind %d", c.Key, c.Kind)
		}
		ps[i] = p
	}
	return ps, nil
}

// rateCost is n*period/limit rounded down, capped at maxUnits; zero when
// nothing is counted.
func rateCost(n, period, limit int64) int64 {
	if n <= 0 || period <= 0 || limit <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(n), uint64(period))
	if hi >= uint64(limit) {
		return maxUnits
	}
	q, _ := bits.Div64(hi, lo, uint64(limit))
	return int64(min(q, uint64(maxUnits)))
}

// rateState is a Rate counter's State whose TAT is d units ahead of now:
// Remaining = floor((Period - d) / (Period/Limit)).
func rateState(p prepared, d int64) State {
	d = max(d, 0)
	s := State{Key: p.c.Key, Metric: p.c.Metric, Limit: p.c.Limit, Reset: time.Duration(d * p.unitNS)}
	if p.c.Limit > 0 && d < p.periodU {
		hi, lo := bits.Mul64(uint64(p.periodU-d), uint64(p.c.Limit))
		q, _ := bits.Div64(hi, lo, uint64(p.periodU)) // < Limit: no overflow
		s.Remaining = min(int64(q), p.c.Limit)
	}
	return s
}

// rateRetry is how long until a denied Rate check fits, given its TAT is d
// units ahead of now.
func rateRetry(p prepared, d int64) time.Duration {
	if p.over {
		return p.c.Period
	}
	return time.Duration(max(d+p.cost-p.periodU, 0) * p.unitNS)
}

// budgetState is a Budget counter's State.
func budgetState(p prepared, spent, reserved int64) State {
	return State{Key: p.c.Key, Metric: p.c.Metric, Limit: p.c.Limit, Remaining: max(p.c.Limit-spent-reserved, 0)}
}

// admission builds Reserve's answer from each check's raw counter values
// (Rate: TAT - now, 0; Budget: spent, reserved) and the index of the first
// check that did not fit (-1: all fit).
func admission(ps []prepared, raw [][2]int64, denied int) Admission {
	a := Admission{Allowed: denied < 0, States: make([]State, len(ps))}
	for i, p := range ps {
		if p.c.Kind == Rate {
			a.States[i] = rateState(p, raw[i][0])
		} else {
			a.States[i] = budgetState(p, raw[i][0], raw[i][1])
		}
	}
	if denied >= 0 {
		c := ps[denied].c
		a.Denied = &c
		if c.Kind == Rate {
			a.RetryAfter = rateRetry(ps[denied], raw[denied][0])
		}
	}
	return a
}

// Memory is the in-process Store: one replica's counters in maps behind a
// mutex. It is the gateway's store when no Redis is configured.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	rates     map[string]memRate // tag\x00key
	budgets   map[string]*memBudget
	ids       map[string]*memRecord // tag\x00id -> reservation or settled marker
	nextSweep int64
}

var _ Store = (*Memory)(nil)

// memRate is a Rate counter: its TAT was d units ahead at time t (µs).
type memRate struct{ t, d, expires int64 }

type memBudget struct {
	spent, reserved int64
	res             map[string]memReservation // id -> open reservation
	nextExp         int64                     // earliest expiry in res (µs)
	expires         int64                     // µs; 0: never
}

type memReservation struct{ amount, exp int64 }

type memRecord struct {
	ttl     int64            // the reservation's ttl (µs)
	taken   map[string]int64 // Rate check Key -> units taken
	done    bool             // settled
	expires int64            // µs
}

// memSweepEvery is how often (by the store's clock) Memory drops expired
// counters and records.
const memSweepEvery = time.Minute

// NewMemory returns an empty in-process store reading time from now (nil:
// time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, rates: map[string]memRate{}, budgets: map[string]*memBudget{}, ids: map[string]*memRecord{}}
}

func memKey(tag, key string) string { return tag + "\x00" + key }

// begin locks the store and returns the time in µs, sweeping now and then.
func (m *Memory) begin() int64 {
	m.mu.Lock()
	now := m.now().UnixMicro()
	if now >= m.nextSweep {
		m.sweep(now)
		m.nextSweep = now + memSweepEvery.Microseconds()
	}
	return now
}

func (m *Memory) sweep(now int64) {
	for k, r := range m.rates {
		if r.expires <= now {
			delete(m.rates, k)
		}
	}
	for k, b := range m.budgets {
		if b.expires != 0 && b.expires <= now {
			delete(m.budgets, k)
		}
	}
	for k, r := range m.ids {
		if r.expires <= now {
			delete(m.ids, k)
		}
	}
}

// ahead is how many units the TAT of rate k is ahead of now (never
// negative).
func (m *Memory) ahead(k string, p prepared, now int64) int64 {
	r, ok := m.rates[k]
	if !ok || r.expires <= now {
		return 0
	}
	return max(r.d-(now-r.t)*p.unitsPerMicro(), 0)
}

// setAhead stores rate k's TAT as d units ahead of now, expiring with it.
func (m *Memory) setAhead(k string, p prepared, d, now int64) {
	if d <= 0 {
		delete(m.rates, k)
		return
	}
	m.rates[k] = memRate{t: now, d: d, expires: now + ceilDiv(d, p.unitsPerMicro()*1000)*1000}
}

// budget is the live counter k after releasing its expired reservations,
// or nil when there is none.
func (m *Memory) budget(k string, now int64) *memBudget {
	b := m.budgets[k]
	if b == nil {
		return nil
	}
	if b.expires != 0 && b.expires <= now {
		delete(m.budgets, k)
		return nil
	}
	if len(b.res) > 0 && b.nextExp <= now {
		b.nextExp = 0
		for id, r := range b.res {
			if r.exp <= now {
				b.reserved -= r.amount
				delete(b.res, id)
			} else if b.nextExp == 0 || r.exp < b.nextExp {
				b.nextExp = r.exp
			}
		}
		b.reserved = max(b.reserved, 0)
	}
	return b
}

// touchBudget is budget k, created when missing, with its lifetime
// refreshed (a write).
func (m *Memory) touchBudget(k string, p prepared, now int64) *memBudget {
	b := m.budget(k, now)
	if b == nil {
		b = &memBudget{res: map[string]memReservation{}}
		m.budgets[k] = b
	}
	b.expires = 0
	if p.periodMS > 0 {
		b.expires = now + p.periodMS*1000
	}
	return b
}

func (m *Memory) record(k string, now int64) *memRecord {
	r := m.ids[k]
	if r != nil && r.expires <= now {
		delete(m.ids, k)
		return nil
	}
	return r
}

// recordExpiry is when a reservation record or settled marker of a
// reservation with ttl (µs) written now goes.
func recordExpiry(ttl, now int64) int64 {
	return now + (ceilDiv(ttl, 1000)+settleRetention.Milliseconds())*1000
}

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, tag, id string, checks []Check, ttl time.Duration) (Admission, error) {
	if id == "" {
		return Admission{}, fmt.Errorf("quota: Reserve needs an id")
	}
	ps, err := prepare(checks)
	if err != nil {
		return Admission{}, err
	}
	if len(ps) == 0 {
		return Admission{Allowed: true, States: []State{}}, nil
	}
	ttlUS := clampTTL(ttl)
	now := m.begin()
	defer m.mu.Unlock()

	raw := make([][2]int64, len(ps))
	old := make([]int64, len(ps)) // a Budget reservation id already holds
	denied := -1
	for i, p := range ps {
		k := memKey(tag, p.c.Key)
		if p.c.Kind == Rate {
			d := m.ahead(k, p, now)
			raw[i][0] = d
			if denied < 0 && (p.over || d+p.cost > p.periodU) {
				denied = i
			}
			continue
		}
		if b := m.budget(k, now); b != nil {
			raw[i] = [2]int64{b.spent, b.reserved}
			old[i] = b.res[id].amount
		}
		if denied < 0 && raw[i][0]+raw[i][1]-old[i]+p.amount > p.c.Limit {
			denied = i
		}
	}
	if denied >= 0 {
		return admission(ps, raw, denied), nil
	}

	rk := memKey(tag, id)
	rec := m.record(rk, now)
	if rec == nil {
		rec = &memRecord{}
		m.ids[rk] = rec
	}
	rec.ttl, rec.expires = ttlUS, recordExpiry(ttlUS, now)
	for i, p := range ps {
		k := memKey(tag, p.c.Key)
		if p.c.Kind == Rate {
			if p.cost > 0 {
				raw[i][0] += p.cost // <= Period: it fit
				m.setAhead(k, p, raw[i][0], now)
			}
			if rec.taken == nil {
				rec.taken = map[string]int64{}
			}
			rec.taken[p.c.Key] = p.cost
			continue
		}
		b := m.touchBudget(k, p, now)
		b.reserved += p.amount - old[i]
		exp := now + ttlUS
		b.res[id] = memReservation{amount: p.amount, exp: exp}
		if b.nextExp == 0 || exp < b.nextExp {
			b.nextExp = exp
		}
		raw[i][1] = b.reserved
	}
	return admission(ps, raw, -1), nil
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, tag, id string, checks []Check, actual map[string]int64) error {
	if id == "" {
		return fmt.Errorf("quota: Settle needs an id")
	}
	ps, err := prepare(checks)
	if err != nil {
		return err
	}
	now := m.begin()
	defer m.mu.Unlock()

	rk := memKey(tag, id)
	rec := m.record(rk, now)
	if rec != nil && rec.done {
		return nil
	}
	for _, p := range ps {
		k := memKey(tag, p.c.Key)
		got := max(actual[p.c.Key], 0)
		if p.c.Kind == Rate {
			taken, ok := int64(0), false
			if rec != nil {
				taken, ok = rec.taken[p.c.Key]
			}
			if !ok {
				taken = p.cost
			}
			d := m.ahead(k, p, now) + rateCost(got, p.periodU, p.c.Limit) - taken
			m.setAhead(k, p, min(d, maxAhead), now)
			continue
		}
		b := m.touchBudget(k, p, now)
		if r, ok := b.res[id]; ok {
			b.reserved = max(b.reserved-r.amount, 0)
			delete(b.res, id)
		}
		b.spent += got
	}
	var ttlUS int64
	if rec != nil {
		ttlUS = rec.ttl
	}
	m.ids[rk] = &memRecord{ttl: ttlUS, done: true, expires: recordExpiry(ttlUS, now)}
	return nil
}

// Peek implements Store. It releases expired reservations but changes
// nothing else.
func (m *Memory) Peek(_ context.Context, tag string, checks []Check) ([]State, error) {
	ps, err := prepare(checks)
	if err != nil {
		return nil, err
	}
	now := m.begin()
	defer m.mu.Unlock()
	raw := make([][2]int64, len(ps))
	for i, p := range ps {
		k := memKey(tag, p.c.Key)
		if p.c.Kind == Rate {
			raw[i][0] = m.ahead(k, p, now)
		} else if b := m.budget(k, now); b != nil {
			raw[i] = [2]int64{b.spent, b.reserved}
		}
	}
	return admission(ps, raw, -1).States, nil
}

// Reset implements Store. Reservation records stay, so a later Settle of an
// earlier reservation still records its spend once.
func (m *Memory) Reset(_ context.Context, tag string, checks []Check) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range checks {
		k := memKey(tag, c.Key)
		delete(m.rates, k)
		delete(m.budgets, k)
	}
	return nil
}

// ceilDiv is a/b rounded up, for a >= 0, b > 0.
func ceilDiv(a, b int64) int64 { return a/b + min(a%b, 1) }

// clampTTL is a reservation's ttl in µs, within [0, maxUnits].
func clampTTL(ttl time.Duration) int64 { return min(max(ttl.Microseconds(), 0), maxUnits) }
