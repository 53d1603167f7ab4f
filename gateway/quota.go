package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/redisbatch"
	"github.com/switchyard/switchyard/policies"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/quota"
	"github.com/switchyard/switchyard/router"
)

// OpenAI's rate-limit headers, set on every response of a limited key.
const (
	HeaderLimitRequests     = "X-Ratelimit-Limit-Requests"
	HeaderRemainingRequests = "X-Ratelimit-Remaining-Requests"
	HeaderResetRequests     = "X-Ratelimit-Reset-Requests"
	HeaderLimitTokens       = "X-Ratelimit-Limit-Tokens"
	HeaderRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	HeaderResetTokens       = "X-Ratelimit-Reset-Tokens"
)

// newLimiter builds the quota limiter and its store from config: Redis
// through a UniversalClient (one address, a Cluster, or Sentinels), else
// in memory.
func newLimiter(q config.Quotas, shared *sharedRedis) (*quota.Limiter, error) {
	var store quota.Store = quota.NewMemory(nil)
	if q.Store == "redis" {
		store = quota.NewRedis(shared.c, "sy", quota.WithBatchers(shared.now, shared.later))
	}
	limits := make([]quota.Limit, len(q.Limits))
	for i, l := range q.Limits {
		limits[i] = quota.Limit{Scope: l.Scope, ID: l.ID, RequestsPerMinute: l.RequestsPerMinute, RequestsPerDay: l.RequestsPerDay,
			TokensPerMinute: l.TokensPerMinute, MicroUSDPerDay: microUSD(l.USDPerDay), MicroUSDPerMonth: microUSD(l.USDPerMonth),
			OnStoreError: quota.Mode(l.OnStoreError)}
	}
	// The breaker's defaults (quota.BreakerOptions): it opens when half
	// of at least 20 store calls in a second fail, or when every call
	// has failed for a second; it stays open a second, then lets one
	// probe through. A single slow call does not open it.
	return quota.New(quota.Options{Store: store, Limits: limits, ReservationTTL: q.ReservationTTL, Breaker: quota.BreakerOptions{}}), nil
}

// sharedRedis is what quotas and the cost ledger use when either is in
// Redis: c, with quotas.redis.timeout, for the request path (reservations,
// reads) through now; bg, with at least backgroundRedisTimeout, for what
// runs after a request ended (settlements and ledger entries, through
// later, which lingers writeLinger so that they share round trips even at
// low rates) and for the ledger's reads (the costs API).
type sharedRedis struct {
	c, bg      redis.UniversalClient
	now, later *redisbatch.Batcher
}

// backgroundRedisTimeout is the least timeout of the calls no client waits
// for: a busy Redis must not turn a settlement or a ledger entry into a
// retry or a spooled entry as quickly as a reservation fails.
const backgroundRedisTimeout = time.Second

// writeLinger is how long settlements and ledger writes wait to share a
// pipeline.
const writeLinger = 2 * time.Millisecond

// openSharedRedis connects when quotas or the ledger use Redis; nil (and
// a close that does nothing) otherwise.
func openSharedRedis(cfg *config.Config) (*sharedRedis, func() error) {
	if cfg.Quotas.Store != "redis" && cfg.Ledger.Store != "redis" && cfg.Cache.Store != "redis" {
		return nil, func() error { return nil }
	}
	c := redisClient(cfg.Quotas.Redis)
	slow := cfg.Quotas.Redis
	slow.Timeout = max(slow.Timeout, backgroundRedisTimeout)
	bg := redisClient(slow)
	shared := &sharedRedis{c: c, bg: bg, now: redisbatch.New(c), later: redisbatch.NewLingering(bg, writeLinger)}
	if r := cfg.Quotas.Redis; r.WaitReplicas > 0 {
		d := redisbatch.Durability{Replicas: r.WaitReplicas, Timeout: r.WaitTimeout}
		shared.now, shared.later = redisbatch.NewDurable(c, 0, d), redisbatch.NewDurable(bg, writeLinger, d)
	}
	return shared, func() error { return errors.Join(c.Close(), bg.Close()) }
}

// redisClient connects to the configured Redis with short timeouts and no
// retries inside a call: the quota limiter's breaker and settlement
// retries decide, and a retried ledger append could record a request
// twice.
func redisClient(r config.Redis) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, Password: r.Password.Value(), DB: r.DB,
		IsClusterMode: r.Cluster, SentinelUsername: r.SentinelUsername, SentinelPassword: r.SentinelPassword.Value(),
		DialTimeout: r.Timeout, ReadTimeout: r.Timeout, WriteTimeout: r.Timeout, MaxRetries: -1, DialerRetries: 1,
	})
}

func microUSD(usd float64) int64 { return int64(usd*1e6 + 0.5) }

func subjectOf(p *Principal) quota.Subject {
	return quota.Subject{Tenant: p.Tenant, Team: p.Team, Key: p.KeyID}
}

// budgetInput is what the quota layer knows, for the policy. Amounts are
// rounded down to two significant figures so that similar budgets share a
// cached decision.
func (s *Server) budgetInput(p *Principal) policies.Budget {
	if !s.quota.Enabled() {
		return policies.Budget{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Quotas.Redis.Timeout)
	defer cancel()
	r := s.quota.Remaining(ctx, subjectOf(p))
	round := func(v *float64) *float64 {
		if v == nil {
			return nil
		}
		x := sig2Down(*v)
		return &x
	}
	return policies.Budget{KeyRemainingUSD: round(r.KeyRemainingUSD), TeamRemainingUSD: round(r.TeamRemainingUSD)}
}

// admit reserves the request's estimated tokens and cost against its
// key's, team's and tenant's limits. It returns the route to run (only
// local and self-hosted deployments when the store is down under a
// local_only limit), or a 429 (rate_limit_exceeded, insufficient_quota)
// or 503 when it may not run. A request admitted while the store is down
// (fail_open, local_only) still carries a ticket, so that its actual
// usage is recorded when it settles.
func (s *Server) admit(c *fiber.Ctx, call *call, p *Principal, rec *record) (*router.Route, *quota.Ticket, error) {
	if !s.quota.Enabled() {
		return call.route, nil, nil
	}
	est := s.estimate(call)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Quotas.Redis.Timeout)
	defer cancel()
	sp := s.child(rec, "quota.reserve", attribute.Int64("switchyard.quota.estimate_tokens", est.Tokens), attribute.Int64("switchyard.quota.estimate_micro_usd", est.MicroUSD))
	ticket, res := s.quota.Admit(ctx, subjectOf(p), est)
	sp.SetAttributes(attribute.Bool("switchyard.quota.allowed", res.Allowed))
	if res.StoreErr != nil {
		sp.SetAttributes(attribute.String("switchyard.quota.mode", string(res.Mode)))
		sp.SetStatus(codes.Error, res.StoreErr.Error())
	}
	if res.Denied != nil {
		s.tel.Metrics.QuotaRejections.Add(context.Background(), 1, metric.WithAttributes(attribute.String("switchyard.quota.metric", string(res.Denied.Metric))))
	}
	sp.End()
	setRateHeaders(c, res.States)
	switch {
	case res.StoreErr != nil && !res.Allowed:
		return nil, nil, &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "quota_unavailable",
			Message: "Quotas cannot be checked right now and this key's limits do not allow requests without them; try again shortly.", Err: res.StoreErr}
	case !res.Allowed:
		return nil, nil, quotaDenied(c, res)
	}
	if res.LocalOnly() {
		rt := &router.Route{Name: call.route.Name}
		for _, d := range call.route.Deployments {
			if d.Kind == config.KindLocal || d.Kind == config.KindSelfHosted {
				rt.Deployments = append(rt.Deployments, d)
			}
		}
		if len(rt.Deployments) == 0 {
			return nil, nil, &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "quota_unavailable",
				Message: "Quotas cannot be checked right now; only local and self-hosted backends may serve meanwhile, and this model has none.", Err: res.StoreErr}
		}
		return rt, ticket, nil
	}
	return call.route, ticket, nil
}

// estimate is what a request may use at most: its prompt (as the
// deployment that counts most tokens for it counts them) plus its max_tokens (or the configured default), at the price
// of the dearest deployment it may fall back to.
func (s *Server) estimate(call *call) quota.Amounts {
	prompt, out := call.promptEstimate(), s.outputEstimate(call)
	var worst pricing.Cost
	for _, d := range call.route.Deployments {
		worst = max(worst, d.Price.Cost(pricing.Tokens{Prompt: prompt, Completion: out}))
	}
	return quota.Amounts{Tokens: prompt + out, MicroUSD: picoToMicroUp(worst)}
}

// maxOutputEstimate bounds a request's max_tokens in estimates: no model
// writes more, and the bound keeps token-times-price far from overflowing
// int64 (a wrapped, negative estimate would reserve nothing).
const maxOutputEstimate = 1 << 24

// picoToMicroUp converts a cost to micro-USD, rounding up so a reservation
// never falls short by a fraction.
func picoToMicroUp(c pricing.Cost) int64 { return (int64(c) + 999_999) / 1_000_000 }

// settleQuota records a finished request's actual usage: exactly once,
// whatever path it ended on (answer, stream end, client gone, upstream
// error), since emit runs once per request. It runs in the background so
// the store's round trip does not delay the response; Shutdown waits for
// the settlements in flight.
func (s *Server) settleQuota(r *record) {
	if r.ticket == nil {
		return
	}
	var actual quota.Amounts
	if u := r.usage; u != nil {
		actual.Tokens = u.PromptTokens + u.CompletionTokens
		actual.MicroUSD = picoToMicroUp(r.cost)
	}
	ticket, requestID := r.ticket, r.requestID
	r.ticket = nil
	_, sp := s.tel.Tracer.Start(r.ctx, "quota.settle", trace.WithAttributes(attribute.Int64("switchyard.quota.tokens", actual.Tokens), attribute.Int64("switchyard.quota.micro_usd", actual.MicroUSD)))
	s.background.goOrRun(func() {
		defer sp.End()
		// Off the request path: room for the limiter's retries.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := ticket.Settle(ctx, actual); err != nil {
			sp.SetStatus(codes.Error, err.Error())
			s.log.Warn("quota settle failed: the usage is not counted, and the reservation, if any, will expire", "request_id", requestID, "error", err)
		}
	})
}

// quotaDenied is the 429 for a request over a limit: rate_limit_exceeded
// for a rate, insufficient_quota for a budget, with Retry-After, from the
// limiter's typed denial.
func quotaDenied(c *fiber.Ctx, res *quota.Result) *APIError {
	d := res.Denial
	retry := strconv.FormatInt(max(int64((d.RetryAfter+time.Second-1)/time.Second), 1), 10)
	scope := d.Scope + " " + d.ID
	if d.Metric == quota.USD {
		return &APIError{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "insufficient_quota", RetryAfter: retry,
			Message: fmt.Sprintf("You exceeded your current quota: the %s spend limit of $%s per %s is used up.", scope, pricing.Cost(d.Limit*1e6).String(), d.Window)}
	}
	return &APIError{Status: http.StatusTooManyRequests, Type: "requests", Code: "rate_limit_exceeded", RetryAfter: retry,
		Message: fmt.Sprintf("Rate limit reached for %s: limit %d %s per %s. Please try again in %s.", scope, d.Limit, d.Metric, d.Window, d.RetryAfter.Round(time.Millisecond))}
}

// untilPeriodEnds is the seconds until a budget's calendar period, a UTC
// day or (monthly) month, starts afresh.
func untilPeriodEnds(monthly bool, now time.Time) int64 {
	next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	if monthly {
		next = time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return max(int64(next.Sub(now).Seconds()+0.999), 1)
}

// setRateHeaders writes OpenAI's x-ratelimit-* headers from the tightest
// request and token counters.
func setRateHeaders(c *fiber.Ctx, states []quota.State) {
	var req, tok *quota.State
	for i := range states {
		st := &states[i]
		switch st.Metric {
		case quota.Requests:
			if req == nil || st.Remaining < req.Remaining {
				req = st
			}
		case quota.Tokens:
			if tok == nil || st.Remaining < tok.Remaining {
				tok = st
			}
		}
	}
	if req != nil {
		c.Set(HeaderLimitRequests, strconv.FormatInt(req.Limit, 10))
		c.Set(HeaderRemainingRequests, strconv.FormatInt(req.Remaining, 10))
		c.Set(HeaderResetRequests, resetString(req.Reset))
	}
	if tok != nil {
		c.Set(HeaderLimitTokens, strconv.FormatInt(tok.Limit, 10))
		c.Set(HeaderRemainingTokens, strconv.FormatInt(tok.Remaining, 10))
		c.Set(HeaderResetTokens, resetString(tok.Reset))
	}
}

// resetString formats a reset as OpenAI does: "1s", "6m0s", "120ms".
func resetString(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return d.Round(time.Second).String()
}
