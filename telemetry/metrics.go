package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
)

// Bucket boundaries the GenAI semantic conventions advise.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	firstBuckets    = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	chunkBuckets    = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}
)

// Metrics are the instruments the gateway records. Their attributes are
// low-cardinality: tenants, teams, models, providers and kinds, never
// users, keys or request ids.
type Metrics struct {
	// The GenAI conventions' client metrics, per upstream call.
	TokenUsage       genaiconv.ClientTokenUsage
	Duration         genaiconv.ClientOperationDuration
	TimeToFirstChunk genaiconv.ClientOperationTimeToFirstChunk
	TimePerChunk     genaiconv.ClientOperationTimePerOutputChunk

	// Requests counts requests by outcome and by the kind of backend that
	// served them (local, selfhosted, proprietary, none).
	Requests metric.Int64Counter
	// PolicyDecisions counts decisions by outcome (allow, deny, error).
	PolicyDecisions metric.Int64Counter
	// PolicyDenials counts denial reasons by code.
	PolicyDenials metric.Int64Counter
	// Redactions counts masked entities by label.
	Redactions metric.Int64Counter
	// QuotaRejections counts 429s by metric (requests, tokens, usd).
	QuotaRejections metric.Int64Counter
	// Fallbacks counts requests served after more than one attempt.
	Fallbacks metric.Int64Counter
	// Shed counts requests refused because the gateway was at capacity
	// (server.max_in_flight, server.max_processing).
	Shed metric.Int64Counter
	// CostUSD is spend by tenant, team, model, provider and kind.
	CostUSD metric.Float64Counter
	// SavingsUSD is what local and self-hosted routing saved against the
	// reference proprietary model, by the same attributes.
	SavingsUSD metric.Float64Counter
	// CacheRequests counts chat requests by response cache outcome (hit,
	// miss, bypass) and model.
	CacheRequests metric.Int64Counter
}

func newMetrics(m metric.Meter) (*Metrics, error) {
	var x Metrics
	var err error
	try := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	x.TokenUsage, e = genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(tokenBuckets...))
	try(e)
	x.Duration, e = genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	try(e)
	x.TimeToFirstChunk, e = genaiconv.NewClientOperationTimeToFirstChunk(m, metric.WithExplicitBucketBoundaries(firstBuckets...))
	try(e)
	x.TimePerChunk, e = genaiconv.NewClientOperationTimePerOutputChunk(m, metric.WithExplicitBucketBoundaries(chunkBuckets...))
	try(e)
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		try(e)
		return c
	}
	x.Requests = counter("switchyard.requests", "Requests by outcome and backend kind.", "{request}")
	x.PolicyDecisions = counter("switchyard.policy.decisions", "Routing policy decisions by outcome.", "{decision}")
	x.PolicyDenials = counter("switchyard.policy.denials", "Policy denial reasons by code.", "{reason}")
	x.Redactions = counter("switchyard.redactions", "Entities masked before a request left, by label.", "{entity}")
	x.QuotaRejections = counter("switchyard.quota.rejections", "Requests refused by a quota, by metric.", "{request}")
	x.Fallbacks = counter("switchyard.fallbacks", "Requests served after more than one attempt.", "{request}")
	x.Shed = counter("switchyard.requests.shed", "Requests refused at once because the gateway was at capacity (server.max_in_flight, server.max_processing).", "{request}")
	x.CacheRequests = counter("switchyard.cache.requests", "Chat requests by response cache outcome: hit, miss or bypass (not consulted).", "{request}")
	x.CostUSD, e = m.Float64Counter("switchyard.cost", metric.WithDescription("Spend in USD."), metric.WithUnit("USD"))
	try(e)
	x.SavingsUSD, e = m.Float64Counter("switchyard.savings", metric.WithDescription("Spend avoided against the reference proprietary model, in USD."), metric.WithUnit("USD"))
	try(e)
	return &x, err
}
