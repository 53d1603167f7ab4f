package quota

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The same behavioural table runs against Memory (with a fake clock that
// the test advances) and Redis (a real redis-server at
// $SWITCHYARD_TEST_REDIS, real time, short periods and sleeps).

// stClock is a settable clock for Memory.
type stClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stEnv is one store under test.
type stEnv struct {
	store Store
	// other reaches the same counters through a second client (Redis),
	// like a second replica; for Memory it is the same store.
	other Store
	tag   string
	// sleep lets time pass for the store: the fake clock, or real time.
	sleep func(time.Duration)
	real  bool
	mark  time.Time
}

// start marks the beginning of a timed sequence on a real-time store.
func (e *stEnv) start() { e.mark = time.Now() }

// slack is how much real time passed since start (zero on the fake
// clock): what a real-time store's answers may have moved by.
func (e *stEnv) slack() time.Duration {
	if !e.real {
		return 0
	}
	return time.Since(e.mark) + time.Millisecond
}

// tol is how many units of a rate of limit per period may have refilled
// during slack.
func (e *stEnv) tol(limit int64, period time.Duration) int64 {
	if !e.real {
		return 0
	}
	return int64(float64(limit)*float64(e.slack())/float64(period)) + 1
}

func stCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *stEnv) reserve(t *testing.T, id string, stTTL time.Duration, checks ...Check) Admission {
	t.Helper()
	a, err := e.store.Reserve(stCtx(t), e.tag, id, checks, stTTL)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", id, err)
	}
	if len(a.States) != len(checks) {
		t.Fatalf("Reserve(%s): %d states for %d checks", id, len(a.States), len(checks))
	}
	return a
}

func (e *stEnv) settle(t *testing.T, id string, actual map[string]int64, checks ...Check) {
	t.Helper()
	if err := e.store.Settle(stCtx(t), e.tag, id, checks, actual); err != nil {
		t.Fatalf("Settle(%s): %v", id, err)
	}
}

func (e *stEnv) peek(t *testing.T, checks ...Check) []State {
	t.Helper()
	s, err := e.store.Peek(stCtx(t), e.tag, checks)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	if len(s) != len(checks) {
		t.Fatalf("Peek: %d states for %d checks", len(s), len(checks))
	}
	return s
}

// stNear fails unless want <= got <= want+tol.
func stNear[T int64 | time.Duration](t *testing.T, what string, got, want, tol T) {
	t.Helper()
	if got < want || got > want+tol {
		if tol == 0 {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
		t.Fatalf("%s = %v, want %v (+%v)", what, got, want, tol)
	}
}

// stBelow fails unless want-tol <= got <= want.
func stBelow(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if got > want || got < want-tol {
		t.Fatalf("%s = %v, want %v (-%v)", what, got, want, tol)
	}
}

func stAllowed(t *testing.T, what string, a Admission) {
	t.Helper()
	if !a.Allowed || a.Denied != nil {
		t.Fatalf("%s: denied by %+v, want allowed", what, a.Denied)
	}
}

func stDenied(t *testing.T, what string, a Admission, key string) {
	t.Helper()
	if a.Allowed || a.Denied == nil {
		t.Fatalf("%s: allowed, want denied by %s", what, key)
	}
	if a.Denied.Key != key {
		t.Fatalf("%s: denied by %s, want %s", what, a.Denied.Key, key)
	}
}

func stRate(key string, m Metric, limit int64, period time.Duration, amount int64) Check {
	return Check{Key: key, Kind: Rate, Metric: m, Limit: limit, Period: period, Amount: amount}
}

func stBudget(key string, limit, amount int64) Check {
	return Check{Key: key, Kind: Budget, Metric: USD, Limit: limit, Period: time.Hour, Amount: amount}
}

func stWith(c Check, amount int64) Check { c.Amount = amount; return c }

const stTTL = 10 * time.Minute

var storeCases = []struct {
	name string
	run  func(t *testing.T, e *stEnv)
}{
	{"RateAdmitsLimitThenRefills", func(t *testing.T, e *stEnv) {
		c := stRate("rpm", Requests, 5, time.Second, 1)
		e.start()
		for i := range int64(5) {
			a := e.reserve(t, fmt.Sprint("r", i), stTTL, c)
			stAllowed(t, fmt.Sprint("request ", i+1), a)
			stNear(t, "remaining", a.States[0].Remaining, 4-i, e.tol(5, time.Second))
		}
		a := e.reserve(t, "r5", stTTL, c)
		stDenied(t, "request 6", a, "rpm")
		// One request's emission interval is 200ms.
		stBelow(t, "RetryAfter", a.RetryAfter, 200*time.Millisecond, e.slack())
		stBelow(t, "Reset", a.States[0].Reset, time.Second, e.slack())
		if a.States[0].Remaining != 0 || a.States[0].Limit != 5 || a.States[0].Metric != Requests {
			t.Fatalf("denied state = %+v", a.States[0])
		}
		e.sleep(a.RetryAfter + 20*time.Millisecond)
		e.start()
		stAllowed(t, "after RetryAfter", e.reserve(t, "r6", stTTL, c))
		stDenied(t, "right after", e.reserve(t, "r7", stTTL, c), "rpm")
		e.sleep(time.Second + 50*time.Millisecond)
		s := e.peek(t, c)[0]
		if s.Remaining != 5 || s.Reset != 0 {
			t.Fatalf("after a full period: %+v, want 5 remaining and no reset", s)
		}
	}},
	{"TokenRateRefundOnSettle", func(t *testing.T, e *stEnv) {
		c := stRate("tpm", Tokens, 1000, time.Minute, 800)
		tol := func() int64 { return e.tol(1000, time.Minute) }
		e.start()
		a := e.reserve(t, "a", stTTL, c)
		stAllowed(t, "800 of 1000", a)
		stNear(t, "remaining", a.States[0].Remaining, 200, tol())
		b := e.reserve(t, "b", stTTL, stWith(c, 400))
		stDenied(t, "400 more", b, "tpm")
		// 800+400 tokens are 72s of a 60s window: 12s to wait.
		stBelow(t, "RetryAfter", b.RetryAfter, 12*time.Second, e.slack())
		e.settle(t, "a", map[string]int64{"tpm": 100}, c)
		stNear(t, "after settling 100", e.peek(t, c)[0].Remaining, 900, tol())
		a = e.reserve(t, "c", stTTL, stWith(c, 400))
		stAllowed(t, "400 after the refund", a)
		stNear(t, "remaining", a.States[0].Remaining, 500, tol())
		// Using more than estimated takes the difference.
		e.settle(t, "c", map[string]int64{"tpm": 600}, stWith(c, 400))
		stNear(t, "after settling 600", e.peek(t, c)[0].Remaining, 300, tol())
	}},
	{"BudgetReserveSettle", func(t *testing.T, e *stEnv) {
		c := stBudget("usd", 10_000_000, 4_000_000)
		a := e.reserve(t, "a", stTTL, c)
		stAllowed(t, "4M", a)
		if s := a.States[0]; s.Remaining != 6_000_000 || s.Reset != 0 || s.Metric != USD {
			t.Fatalf("state = %+v", s)
		}
		stAllowed(t, "5M", e.reserve(t, "b", stTTL, stWith(c, 5_000_000)))
		d := e.reserve(t, "c", stTTL, stWith(c, 2_000_000))
		stDenied(t, "2M more", d, "usd")
		if d.RetryAfter != 0 || d.Denied.Kind != Budget || d.States[0].Remaining != 1_000_000 {
			t.Fatalf("denied budget: RetryAfter %v, state %+v", d.RetryAfter, d.States[0])
		}
		// Settling lower frees the rest of the reservation.
		e.settle(t, "a", map[string]int64{"usd": 1_000_000}, c)
		stNear(t, "after settling 1M of 4M", e.peek(t, c)[0].Remaining, 4_000_000, 0)
		// Settling higher records the overspend.
		e.settle(t, "b", map[string]int64{"usd": 7_000_000}, stWith(c, 5_000_000))
		stNear(t, "after settling 7M of 5M", e.peek(t, c)[0].Remaining, 2_000_000, 0)
		stDenied(t, "3M", e.reserve(t, "d", stTTL, stWith(c, 3_000_000)), "usd")
		stAllowed(t, "2M", e.reserve(t, "e", stTTL, stWith(c, 2_000_000)))
		// Spend past the limit: remaining stays at zero.
		e.settle(t, "e", map[string]int64{"usd": 5_000_000}, stWith(c, 2_000_000))
		stNear(t, "overspent", e.peek(t, c)[0].Remaining, 0, 0)
	}},
	{"AllOrNone", func(t *testing.T, e *stEnv) {
		r := stRate("rpm", Requests, 10, time.Minute, 1)
		b := stBudget("usd", 1_000_000, 2_000_000)
		a := e.reserve(t, "a", stTTL, r, b)
		stDenied(t, "budget too small", a, "usd")
		if a.RetryAfter != 0 || a.States[0].Remaining != 10 || a.States[1].Remaining != 1_000_000 {
			t.Fatalf("denied: RetryAfter %v, states %+v", a.RetryAfter, a.States)
		}
		if s := e.peek(t, r, b); s[0].Remaining != 10 || s[1].Remaining != 1_000_000 {
			t.Fatalf("a failing budget took from the rate: %+v", s)
		}
		// A full rate leaves the budget untouched.
		one := stRate("rpm1", Requests, 1, time.Minute, 1)
		e.start() // RetryAfter counts from this reservation
		stAllowed(t, "the one request", e.reserve(t, "b", stTTL, one))
		a = e.reserve(t, "c", stTTL, stWith(b, 100), one)
		stDenied(t, "rate full", a, "rpm1")
		stBelow(t, "RetryAfter", a.RetryAfter, time.Minute, e.slack())
		if s := e.peek(t, b)[0]; s.Remaining != 1_000_000 {
			t.Fatalf("a failing rate took from the budget: %+v", s)
		}
		// The first check that does not fit is the one reported.
		stDenied(t, "both fail", e.reserve(t, "d", stTTL, one, b), "rpm1")
		stDenied(t, "both fail", e.reserve(t, "e", stTTL, b, one), "usd")
		// Both fit: both are taken.
		a = e.reserve(t, "f", stTTL, r, stWith(b, 300_000))
		stAllowed(t, "both fit", a)
		if a.States[0].Remaining != 9 || a.States[1].Remaining != 700_000 {
			t.Fatalf("states = %+v", a.States)
		}
	}},
	{"SettleExactlyOnce", func(t *testing.T, e *stEnv) {
		b := stBudget("usd", 1_000_000, 600_000)
		r := stRate("tpm", Tokens, 1000, time.Minute, 500)
		stAllowed(t, "reserve", e.reserve(t, "a", stTTL, b, r))
		e.start()
		for range 3 {
			e.settle(t, "a", map[string]int64{"usd": 500_000, "tpm": 100}, b, r)
		}
		s := e.peek(t, b, r)
		stNear(t, "budget", s[0].Remaining, 500_000, 0)
		stNear(t, "tokens", s[1].Remaining, 900, e.tol(1000, time.Minute))
		// Also through another replica.
		if err := e.other.Settle(stCtx(t), e.tag, "a", []Check{b, r}, map[string]int64{"usd": 1}); err != nil {
			t.Fatal(err)
		}
		stNear(t, "budget", e.peek(t, b)[0].Remaining, 500_000, 0)
	}},
	{"ExpiredReservationReclaimed", func(t *testing.T, e *stEnv) {
		b := Check{Key: "usd", Kind: Budget, Metric: USD, Limit: 1_000_000, Period: time.Minute, Amount: 1_000_000}
		short := 300 * time.Millisecond
		stAllowed(t, "reserve all", e.reserve(t, "a", short, b))
		stAllowed(t, "a zero reservation", e.reserve(t, "z", short, stWith(b, 0)))
		stDenied(t, "nothing left", e.reserve(t, "b", short, stWith(b, 1)), "usd")
		e.sleep(short + 100*time.Millisecond)
		stNear(t, "reclaimed", e.peek(t, b)[0].Remaining, 1_000_000, 0)
		// The late settle still records what was spent, once.
		e.settle(t, "a", map[string]int64{"usd": 300_000}, b)
		e.settle(t, "a", map[string]int64{"usd": 300_000}, b)
		stNear(t, "after the late settle", e.peek(t, b)[0].Remaining, 700_000, 0)
		stAllowed(t, "the rest", e.reserve(t, "c", short, stWith(b, 700_000)))
		stDenied(t, "one more", e.reserve(t, "d", short, stWith(b, 1)), "usd")
		// An expiry also frees room for Reserve itself (not only Peek).
		e.sleep(short + 100*time.Millisecond)
		stAllowed(t, "after expiry", e.reserve(t, "e", short, stWith(b, 700_000)))
	}},
	{"PeekChangesNothing", func(t *testing.T, e *stEnv) {
		r := stRate("tpm", Tokens, 1000, time.Hour, 0)
		b := stBudget("usd", 1_000_000, 0)
		fresh := e.peek(t, r, b)
		if fresh[0].Remaining != 1000 || fresh[0].Reset != 0 || fresh[1].Remaining != 1_000_000 || fresh[0].Key != "tpm" || fresh[1].Key != "usd" {
			t.Fatalf("fresh counters = %+v", fresh)
		}
		e.start()
		a := e.reserve(t, "a", stTTL, stWith(r, 300), stWith(b, 400_000))
		stAllowed(t, "reserve", a)
		for range 3 {
			s := e.peek(t, r, b)
			stNear(t, "tokens", s[0].Remaining, 700, e.tol(1000, time.Hour))
			stBelow(t, "reset", s[0].Reset, a.States[0].Reset, e.slack())
			stNear(t, "budget", s[1].Remaining, 600_000, 0)
		}
		// Peeking with amounts reserves nothing either.
		e.peek(t, stWith(r, 700), stWith(b, 600_000))
		stAllowed(t, "what is left", e.reserve(t, "b", stTTL, stWith(r, 700), stWith(b, 600_000)))
	}},
	{"ResetZeroes", func(t *testing.T, e *stEnv) {
		r := stRate("tpm", Tokens, 1000, time.Hour, 900)
		b := stBudget("usd", 1_000_000, 500_000)
		stAllowed(t, "a", e.reserve(t, "a", stTTL, r, b))
		e.settle(t, "a", map[string]int64{"tpm": 900, "usd": 400_000}, r, b)
		stAllowed(t, "b", e.reserve(t, "b", stTTL, stWith(r, 100), b))
		if err := e.other.Reset(stCtx(t), e.tag, []Check{r, b}); err != nil {
			t.Fatal(err)
		}
		s := e.peek(t, r, b)
		if s[0].Remaining != 1000 || s[0].Reset != 0 || s[1].Remaining != 1_000_000 {
			t.Fatalf("after Reset: %+v", s)
		}
		stAllowed(t, "the whole limits", e.reserve(t, "c", stTTL, stWith(r, 1000), stWith(b, 1_000_000)))
	}},
	{"AmountOverLimit", func(t *testing.T, e *stEnv) {
		r := stRate("rpm", Requests, 10, 90*time.Second, 11)
		a := e.reserve(t, "a", stTTL, r)
		stDenied(t, "11 of 10", a, "rpm")
		if a.RetryAfter != 90*time.Second || a.States[0].Remaining != 10 {
			t.Fatalf("RetryAfter %v (want the period), state %+v", a.RetryAfter, a.States[0])
		}
		b := stBudget("usd", 10, 11)
		a = e.reserve(t, "b", stTTL, b)
		stDenied(t, "11 of 10", a, "usd")
		if a.RetryAfter != 0 || a.States[0].Remaining != 10 {
			t.Fatalf("RetryAfter %v, state %+v", a.RetryAfter, a.States[0])
		}
		stAllowed(t, "exactly the limit", e.reserve(t, "c", stTTL, stWith(r, 10), stWith(b, 10)))
	}},
	{"MissingActualSettlesZero", func(t *testing.T, e *stEnv) {
		r := stRate("tpm", Tokens, 1000, time.Minute, 500)
		b := stBudget("usd", 1_000_000, 300_000)
		stAllowed(t, "reserve", e.reserve(t, "a", stTTL, r, b))
		e.start()
		e.settle(t, "a", nil, r, b)
		s := e.peek(t, r, b)
		stNear(t, "tokens", s[0].Remaining, 1000-e.tol(1000, time.Minute), e.tol(1000, time.Minute))
		stNear(t, "budget", s[1].Remaining, 1_000_000, 0)
	}},
	{"SameIDReplacesReservation", func(t *testing.T, e *stEnv) {
		b := stBudget("usd", 1_000_000, 400_000)
		stAllowed(t, "first", e.reserve(t, "a", stTTL, b))
		a := e.reserve(t, "a", stTTL, stWith(b, 900_000))
		stAllowed(t, "again, larger", a)
		stNear(t, "remaining", a.States[0].Remaining, 100_000, 0)
		e.settle(t, "a", map[string]int64{"usd": 100_000}, b)
		stNear(t, "settled", e.peek(t, b)[0].Remaining, 900_000, 0)
	}},
	{"HighRatePrecision", func(t *testing.T, e *stEnv) {
		// 100M tokens a minute: 0.6µs a token, below a microsecond.
		r := stRate("tpm", Tokens, 100_000_000, time.Minute, 1)
		e.start()
		for i := range int64(3) {
			a := e.reserve(t, fmt.Sprint("a", i), stTTL, r)
			stAllowed(t, "one token", a)
			stNear(t, "remaining", a.States[0].Remaining, 100_000_000-1-i, e.tol(100_000_000, time.Minute))
		}
		// A day's requests.
		d := stRate("rpd", Requests, 3, 24*time.Hour, 1)
		for i := range 3 {
			stAllowed(t, "rpd", e.reserve(t, fmt.Sprint("d", i), stTTL, d))
		}
		a := e.reserve(t, "d3", stTTL, d)
		stDenied(t, "fourth of the day", a, "rpd")
		stBelow(t, "RetryAfter", a.RetryAfter, 8*time.Hour, e.slack())
		// A rate over a long period counts in microseconds.
		y := stRate("rpy", Requests, 2, 365*24*time.Hour, 1)
		stAllowed(t, "rpy", e.reserve(t, "y0", stTTL, y))
		stAllowed(t, "rpy", e.reserve(t, "y1", stTTL, y))
		a = e.reserve(t, "y2", stTTL, y)
		stDenied(t, "third of the year", a, "rpy")
		stBelow(t, "RetryAfter", a.RetryAfter, 365*12*time.Hour, e.slack())
	}},
	{"InvalidChecks", func(t *testing.T, e *stEnv) {
		for _, cs := range [][]Check{
			{stBudget("x", 1, 1), stRate("x", Requests, 1, time.Minute, 1)},
			{stRate("r", Requests, 1, 0, 1)},
			{{Key: "k", Kind: Kind(7), Limit: 1}},
		} {
			_, err := e.store.Reserve(stCtx(t), e.tag, "id", cs, stTTL)
			if err == nil || errors.Is(err, ErrStore) {
				t.Fatalf("Reserve(%+v) = %v, want a non-store error", cs, err)
			}
		}
		if _, err := e.store.Reserve(stCtx(t), e.tag, "", []Check{stBudget("x", 1, 1)}, stTTL); err == nil {
			t.Fatal("Reserve with no id succeeded")
		}
		a, err := e.store.Reserve(stCtx(t), e.tag, "id", nil, stTTL)
		if err != nil || !a.Allowed {
			t.Fatalf("Reserve of no checks = %+v, %v", a, err)
		}
	}},
	{"SettleUnreserved", func(t *testing.T, e *stEnv) {
		// A fail_open admission: never reserved, settled with checks of
		// zero Amount, records the actual amounts in full.
		r := stRate("tpm", Tokens, 1000, time.Minute, 0)
		b := stBudget("usd", 1_000_000, 0)
		e.start()
		e.settle(t, "never", map[string]int64{"tpm": 300, "usd": 400_000}, r, b)
		s := e.peek(t, r, b)
		stNear(t, "tokens", s[0].Remaining, 700, e.tol(1000, time.Minute))
		stNear(t, "budget", s[1].Remaining, 600_000, 0)
		// Settled once, whichever replica repeats it.
		if err := e.other.Settle(stCtx(t), e.tag, "never", []Check{r, b}, map[string]int64{"tpm": 300, "usd": 400_000}); err != nil {
			t.Fatal(err)
		}
		stNear(t, "budget after a repeat", e.peek(t, b)[0].Remaining, 600_000, 0)
		// The reply was lost but the reservation was made: settling with
		// zero Amounts still releases what it took.
		stAllowed(t, "reserve", e.reserve(t, "lost", stTTL, stWith(r, 500), stWith(b, 500_000)))
		e.settle(t, "lost", map[string]int64{"tpm": 100, "usd": 50_000}, r, b)
		s = e.peek(t, r, b)
		stNear(t, "tokens after the lost reply", s[0].Remaining, 600, e.tol(1000, time.Minute))
		stNear(t, "budget after the lost reply", s[1].Remaining, 550_000, 0)
	}},
	{"OverspendChargedPastLimit", func(t *testing.T, e *stEnv) {
		b := stBudget("usd", 1_000_000, 600_000)
		stAllowed(t, "600k of 1M", e.reserve(t, "a", stTTL, b))
		e.settle(t, "a", map[string]int64{"usd": 1_500_000}, b)
		stNear(t, "remaining", e.peek(t, b)[0].Remaining, 0, 0)
		// The same counter under a higher limit shows what was spent.
		stNear(t, "spent (10M - remaining)", e.peek(t, Check{Key: "usd", Kind: Budget, Metric: USD, Limit: 10_000_000, Period: time.Hour})[0].Remaining, 10_000_000-1_500_000, 0)
		stDenied(t, "the next request", e.reserve(t, "b", stTTL, stWith(b, 1)), "usd")
		stDenied(t, "even one estimated at zero", e.reserve(t, "c", stTTL, stWith(b, 0)), "usd")
	}},
	{"ConcurrentOvershootBounded", func(t *testing.T, e *stEnv) {
		// 40 requests at once reserve 100k each of 1M (10 fit), then
		// settle at once at 100k plus an excess from -30k to +60k: spend
		// passes the limit by exactly the sum of the admitted ones'
		// (actual - reserved), which is at most the sum of their
		// positive excesses.
		const limit, est = 1_000_000, 100_000
		b := Check{Key: "usd", Kind: Budget, Metric: USD, Limit: limit, Period: time.Hour, Amount: est}
		wide := stWith(b, 0)
		wide.Limit = 100 * limit
		var mu sync.Mutex
		var admitted []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 40 {
			s := e.store
			if i%2 == 1 {
				s = e.other
			}
			wg.Go(func() {
				<-start
				id := fmt.Sprint("c", i)
				a, err := s.Reserve(context.Background(), e.tag, id, []Check{b}, stTTL)
				if err != nil {
					t.Error(err)
					return
				}
				if a.Allowed {
					mu.Lock()
					admitted = append(admitted, id)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(admitted) != 10 {
			t.Fatalf("%d admitted, want 10", len(admitted))
		}
		var sum, positive int64
		for j, id := range admitted {
			excess := int64(j-3) * 10_000 // -30k .. +60k
			sum += excess
			positive += max(excess, 0)
			s := e.store
			if j%2 == 1 {
				s = e.other
			}
			wg.Go(func() {
				if err := s.Settle(context.Background(), e.tag, id, []Check{b}, map[string]int64{"usd": est + excess}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		spent := wide.Limit - e.peek(t, wide)[0].Remaining
		if spent-limit != sum || sum > positive || sum <= 0 {
			t.Fatalf("spent %d: %d past the limit, want %d (sum of excesses, at most %d)", spent, spent-limit, sum, positive)
		}
		stDenied(t, "once past the limit", e.reserve(t, "next", stTTL, stWith(b, 0)), "usd")

		// When none uses more than it reserved, spend stays within the
		// limit.
		e.tag += ":under"
		for j := range 10 {
			stAllowed(t, "reserve", e.reserve(t, fmt.Sprint("u", j), stTTL, b))
		}
		stDenied(t, "full", e.reserve(t, "u10", stTTL, stWith(b, 1)), "usd")
		for j := range 10 {
			wg.Go(func() {
				if err := e.store.Settle(context.Background(), e.tag, fmt.Sprint("u", j), []Check{b}, map[string]int64{"usd": est - int64(j)*1000}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if spent := wide.Limit - e.peek(t, wide)[0].Remaining; spent != 10*est-45_000 {
			t.Fatalf("spent %d, want %d", spent, 10*est-45_000)
		}
	}},
	{"ConcurrentBudgetExactlyFits", func(t *testing.T, e *stEnv) {
		checks := []Check{
			stRate("rpm", Requests, 100_000, time.Minute, 1),
			{Key: "usd", Kind: Budget, Metric: USD, Limit: 20_000_000, Period: time.Hour, Amount: 1_000_000},
		}
		if n := stConcurrently(t, e, 200, checks); n != 20 {
			t.Fatalf("%d of 200 admitted against $20 at $1 each, want 20", n)
		}
		if s := e.peek(t, checks...); s[1].Remaining != 0 || s[0].Remaining < 100_000-20 {
			t.Fatalf("states = %+v", s)
		}
	}},
	{"ConcurrentTokensExactlyFit", func(t *testing.T, e *stEnv) {
		checks := []Check{stRate("tpm", Tokens, 10_000, time.Minute, 500)}
		if n := stConcurrently(t, e, 200, checks); n != 20 {
			t.Fatalf("%d of 200 admitted against 10000 TPM at 500 each, want 20", n)
		}
	}},
}

// stConcurrently runs n Reserves of checks at once, alternating between the
// two clients, and counts the admitted ones.
func stConcurrently(t *testing.T, e *stEnv, n int, checks []Check) int {
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		s := e.store
		if i%2 == 1 {
			s = e.other
		}
		wg.Go(func() {
			<-start
			a, err := s.Reserve(context.Background(), e.tag, fmt.Sprint("c", i), checks, stTTL)
			if err != nil {
				errs <- err
				return
			}
			if a.Allowed {
				admitted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return int(admitted.Load())
}

var stTagSeq atomic.Int64

// stTag keeps tests (and repeated runs against one server) apart.
func stTag(t *testing.T) string {
	return fmt.Sprintf("test:%s:%d:%d", t.Name(), time.Now().UnixNano(), stTagSeq.Add(1))
}

func stMemoryEnv(t *testing.T) *stEnv {
	clock := &stClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	m := NewMemory(clock.Now)
	return &stEnv{store: m, other: m, tag: stTag(t), sleep: clock.Add}
}

// stRedisAddr is the test server's address, or skips (fails when
// SWITCHYARD_REQUIRE_REDIS=1) without one.
func stRedisAddr(t testing.TB) string {
	addr := os.Getenv("SWITCHYARD_TEST_REDIS")
	if addr == "" {
		const how = "(redis-server --port 6390 --save '' --appendonly no --daemonize yes; SWITCHYARD_TEST_REDIS=127.0.0.1:6390)"
		if os.Getenv("SWITCHYARD_REQUIRE_REDIS") == "1" {
			t.Fatal("SWITCHYARD_REQUIRE_REDIS=1 but SWITCHYARD_TEST_REDIS is not set " + how)
		}
		t.Skip("SWITCHYARD_TEST_REDIS is not set: skipping the Redis store " + how)
	}
	return addr
}

func stRedisClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s: %v", addr, err)
	}
	return c
}

const stPrefix = "sytest"

func TestStore(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		for _, tc := range storeCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, stMemoryEnv(t))
			})
		}
	})
	t.Run("redis", func(t *testing.T) {
		addr := stRedisAddr(t)
		// Two clients: two gateway replicas.
		one, two := NewRedis(stRedisClient(t, addr), stPrefix), NewRedis(stRedisClient(t, addr), stPrefix)
		for _, tc := range storeCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, &stEnv{store: one, other: two, tag: stTag(t), sleep: time.Sleep, real: true})
			})
		}
	})
}

func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond,
		MaxRetries: -1, DialerRetries: 1, // -1: no command retries; 1: one dial attempt
	})
	defer c.Close()
	s := NewRedis(c, stPrefix)
	checks := []Check{stBudget("usd", 10, 1)}
	ops := map[string]func(ctx context.Context) error{
		"Reserve": func(ctx context.Context) error {
			_, err := s.Reserve(ctx, "t", "id", checks, stTTL)
			return err
		},
		"Settle": func(ctx context.Context) error { return s.Settle(ctx, "t", "id", checks, nil) },
		"Peek": func(ctx context.Context) error {
			_, err := s.Peek(ctx, "t", checks)
			return err
		},
		"Reset": func(ctx context.Context) error { return s.Reset(ctx, "t", checks) },
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := op(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, ErrStore) {
			t.Fatalf("%s on a dead address: %v, want ErrStore", name, err)
		}
		if took > 150*time.Millisecond {
			t.Fatalf("%s took %v to fail", name, took)
		}
	}
}

// TestRedisDeadline: the caller's deadline bounds a call even when the
// server does not answer.
func TestRedisDeadline(t *testing.T) {
	addr := stRedisAddr(t)
	s := NewRedis(stRedisClient(t, addr), stPrefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err := s.Reserve(ctx, stTag(t), "id", []Check{stBudget("usd", 10, 1)}, stTTL)
	if !errors.Is(err, ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve past its deadline: %v, want ErrStore and DeadlineExceeded", err)
	}
}

// TestRedisKeys: one call's keys share the hash tag, and every key the
// scripts write expires.
func TestRedisKeys(t *testing.T) {
	r := NewRedis(nil, "sy")
	ps, err := prepare([]Check{stRate("team:a:tpm", Tokens, 10, time.Minute, 1), stBudget("key:k1:usd-month:2026-11", 10, 1)})
	if err != nil {
		t.Fatal(err)
	}
	keys := r.keys("t:acme", "id1", ps)
	want := []string{"sy:{t:acme}#res:id1", "sy:{t:acme}:team:a:tpm:tat", "sy:{t:acme}:key:k1:usd-month:2026-11:bud", "sy:{t:acme}:key:k1:usd-month:2026-11:exp"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("keys = %q, want %q", keys, want)
	}

	addr := stRedisAddr(t)
	c := stRedisClient(t, addr)
	s := NewRedis(c, stPrefix)
	tag := stTag(t)
	checks := []Check{stRate("tpm", Tokens, 1000, time.Minute, 100), stBudget("usd", 1000, 100)}
	ctx := stCtx(t)
	if a, err := s.Reserve(ctx, tag, "id1", checks, time.Minute); err != nil || !a.Allowed {
		t.Fatalf("Reserve = %+v, %v", a, err)
	}
	check := func(stage string) {
		t.Helper()
		found, err := c.Keys(ctx, stPrefix+":{"+tag+"}*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			t.Fatalf("%s: no keys", stage)
		}
		for _, k := range found {
			stTTL, err := c.PTTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if stTTL <= 0 {
				t.Fatalf("%s: key %s has no expiry (%v)", stage, k, stTTL)
			}
		}
	}
	check("after Reserve")
	if err := s.Settle(ctx, tag, "id1", checks, map[string]int64{"tpm": 50, "usd": 50}); err != nil {
		t.Fatal(err)
	}
	check("after Settle")
}

func TestRateArithmetic(t *testing.T) {
	ps, err := prepare([]Check{
		stRate("a", Tokens, 3, time.Second, 1),
		stRate("b", Tokens, 1<<40, 24*time.Hour, 1<<39),
		stRate("c", Tokens, 1, 100*365*24*time.Hour, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := ps[0], ps[1], ps[2]
	if a.unitNS != 1 || a.cost != 333_333_333 || rateCost(3, a.periodU, 3) != int64(time.Second) {
		t.Fatalf("a = %+v", a)
	}
	if s := rateState(a, a.cost); s.Remaining != 2 {
		t.Fatalf("after one of three: %+v", s)
	}
	if s := rateState(a, 3*a.cost); s.Remaining != 0 || s.Reset != 999_999_999 {
		t.Fatalf("after three of three: %+v", s)
	}
	if b.cost != int64(12*time.Hour) {
		t.Fatalf("b = %+v", b)
	}
	if c.unitNS != 1000 || c.periodU != maxUnits || c.cost != maxUnits {
		t.Fatalf("c = %+v", c)
	}
	if got := rateCost(1<<62, 1<<51, 1); got != maxUnits {
		t.Fatalf("overflowing cost = %d", got)
	}
}
