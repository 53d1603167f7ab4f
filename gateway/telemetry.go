package gateway

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// Switchyard's own span attributes.
const (
	attrDecisionID  = attribute.Key("switchyard.decision_id")
	attrBackend     = attribute.Key("switchyard.backend")
	attrBackendKind = attribute.Key("switchyard.backend.kind")
	attrCostUSD     = attribute.Key("switchyard.cost_usd")
	attrAttempts    = attribute.Key("switchyard.attempts")
	attrReasons     = attribute.Key("switchyard.policy.reasons")
	attrTenant      = attribute.Key("switchyard.tenant")
	attrTeam        = attribute.Key("switchyard.team")
)

// genAIProvider is a backend's gen_ai.provider.name: the convention's
// well-known values where there is one.
func genAIProvider(provider string) string {
	switch provider {
	case config.ProviderAzure:
		return "azure.ai.openai"
	case config.ProviderGemini:
		return "gcp.gemini"
	case config.ProviderBedrock:
		return "aws.bedrock"
	case config.ProviderLlamaCpp:
		return "llama.cpp"
	case "mistral":
		return "mistral_ai"
	}
	return provider
}

// genAIOperation is the convention's gen_ai.operation.name.
func genAIOperation(op providers.Operation) string {
	switch op {
	case providers.OpCompletion:
		return "text_completion"
	case providers.OpEmbeddings:
		return "embeddings"
	}
	return "chat"
}

// headerCarrier reads W3C trace context from the client's request.
type headerCarrier struct{ c *fiber.Ctx }

func (h headerCarrier) Get(k string) string { return h.c.Get(k) }
func (h headerCarrier) Set(string, string)  {}
func (h headerCarrier) Keys() []string      { return []string{"traceparent", "tracestate", "baggage"} }

// startRequestSpan opens the request's server span, continuing the
// client's trace when it sent one. emit ends it: for a stream that is when
// the stream ends, not when the handler returns.
func (s *Server) startRequestSpan(c *fiber.Ctx, r *record) {
	ctx := s.tel.Propagator.Extract(context.Background(), headerCarrier{c})
	ctx, r.span = s.tel.Tracer.Start(ctx, r.method+" "+r.path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.method),
			attribute.String("url.path", r.path),
		))
	r.ctx = ctx
}

// child starts a span under the request's.
func (s *Server) child(r *record, name string, attrs ...attribute.KeyValue) trace.Span {
	_, sp := s.tel.Tracer.Start(r.ctx, name, trace.WithAttributes(attrs...))
	return sp
}

// upstreamContext is the context of a request's upstream calls: the
// shutdown-aware base, carrying the request's span and record.
func (s *Server) upstreamContext(rec *record) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(s.base)
	ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(rec.routeCtx()))
	return context.WithValue(ctx, recordKey{}, rec), cancel
}

type recordKey struct{}

// routeCtx is the routing span's context if there is one, else the
// request's.
func (r *record) routeCtx() context.Context {
	if r.routeSpanCtx != nil {
		return r.routeSpanCtx
	}
	if r.ctx != nil {
		return r.ctx
	}
	return context.Background()
}

// startAttempt is the router's StartAttempt hook: one client span per
// upstream attempt, named and attributed by the GenAI conventions. A failed
// attempt's span ends at once; the successful one stays open until the
// request ends (for a stream, its last chunk) and gets the usage.
func (s *Server) startAttempt(ctx context.Context, d *router.Deployment) (context.Context, func(router.Attempt)) {
	rec, _ := ctx.Value(recordKey{}).(*record)
	b := s.backends[d.Backend]
	op := "chat"
	aux, _ := ctx.Value(auxiliaryKey{}).(providers.Operation)
	switch {
	case aux != "":
		// A call the gateway makes for itself (the cache's lookup
		// embedding): its own operation, none of the request's
		// parameters, and its span is not the request's attempt.
		op, rec = genAIOperation(aux), nil
	case rec != nil:
		op = genAIOperation(rec.op)
	}
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.provider.name", genAIProvider(b.Provider)),
		attribute.String("gen_ai.request.model", d.Model),
		attrBackend.String(d.Backend),
		attrBackendKind.String(d.Kind),
	}
	if hp := s.hostPorts[b.Name]; hp.host != "" {
		attrs = append(attrs, attribute.String("server.address", hp.host))
		if hp.port > 0 {
			attrs = append(attrs, attribute.Int("server.port", hp.port))
		}
	}
	if rec != nil && rec.maxTokens > 0 {
		attrs = append(attrs, attribute.Int64("gen_ai.request.max_tokens", rec.maxTokens))
	}
	if rec != nil && rec.temperature != nil {
		attrs = append(attrs, attribute.Float64("gen_ai.request.temperature", *rec.temperature))
	}
	ctx, sp := s.tel.Tracer.Start(ctx, op+" "+d.Model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(a router.Attempt) {
		if a.Err != nil {
			e := toAPIError(a.Err)
			sp.SetAttributes(attribute.String("error.type", e.Code))
			sp.SetStatus(codes.Error, e.Message)
			sp.End()
			return
		}
		if rec == nil {
			sp.End()
			return
		}
		rec.attemptSpan = sp
	}
}

// auxiliaryKey marks a context whose upstream calls the gateway makes for
// itself within a request (value: their providers.Operation), such as
// embedding the cache's lookup text: startAttempt names their spans by
// that operation and ends them with the attempt.
type auxiliaryKey struct{}

// auxiliary is ctx for the gateway's own upstream calls of operation op.
func auxiliary(ctx context.Context, op providers.Operation) context.Context {
	return context.WithValue(ctx, auxiliaryKey{}, op)
}

// hostAndPort is a backend's server address and port, parsed once (New).
type hostAndPort struct {
	host string
	port int
}

func hostPort(base string) (string, int) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", 0
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		host = u.Host
		switch u.Scheme {
		case "https":
			p = "443"
		case "http":
			p = "80"
		}
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// noteResponse reads what the conventions record of a JSON answer.
func noteResponse(rec *record, body []byte) {
	r := gjson.ParseBytes(body)
	rec.respID, rec.respModel = r.Get("id").Str, r.Get("model").Str
	rec.finish = nil
	choices := r.Get("choices")
	if !choices.Exists() {
		if f := nativeFinish(body); f != "" {
			rec.finish = append(rec.finish, f)
		}
		return
	}
	choices.Get("#.finish_reason").ForEach(func(_, v gjson.Result) bool {
		if v.Str != "" {
			rec.finish = append(rec.finish, v.Str)
		}
		return true
	})
}

// nativeFinish is why a native answer ended, as its format says it: an
// Anthropic message's stop_reason (or a message_delta event's), a
// Responses API response's status, or the reason it is incomplete (or
// that of a response.completed or response.incomplete event's response).
// It is "" for anything else.
func nativeFinish(data []byte) string {
	r := gjson.ParseBytes(data)
	switch r.Get("type").Str {
	case "message":
		return r.Get("stop_reason").Str
	case "message_delta":
		return r.Get("delta.stop_reason").Str
	case "response.completed", "response.incomplete":
		r = r.Get("response")
	default:
		if r.Get("object").Str != "response" {
			return ""
		}
	}
	if why := r.Get("incomplete_details.reason").Str; why != "" {
		return why
	}
	return r.Get("status").Str
}

// observe ends the request's spans and records its metrics; emit calls it
// once per request.
func (s *Server) observe(r *record) {
	if r.span == nil {
		return
	}
	m := s.tel.Metrics
	ctx := context.Background()
	kind, provider := "none", ""
	if b, ok := s.backends[r.backend]; ok {
		kind, provider = b.Kind, genAIProvider(b.Provider)
	}
	var tenant, team string
	if p := r.principal; p != nil {
		tenant, team = p.Tenant, p.Team
	}
	outcome := "ok"
	switch {
	case r.status >= 500:
		outcome = "server_error"
	case r.status >= 400:
		outcome = "client_error"
	}
	// Labels name configured routes only: a client inventing model names
	// must not invent time series.
	model := r.route
	if model == "" {
		model = "unknown"
	}
	l := labels{outcome: outcome, kind: kind, model: model, op: genAIOperation(r.op), provider: provider,
		upstream: r.upstream, respModel: r.respModel, tenant: tenant, team: team}
	if r.err != nil && r.backend != "" {
		l.errType = r.err.Code
	}
	sets := s.labelSets.sets(l)
	if r.model != "" {
		m.Requests.Add(ctx, 1, sets.requests)
	}
	if r.cacheResult != "" {
		m.CacheRequests.Add(ctx, 1, metric.WithAttributes(attribute.String("switchyard.cache.result", r.cacheResult), attribute.String("gen_ai.request.model", model)))
	}
	if r.cacheHit {
		m.SavingsUSD.Add(ctx, r.savings.USD(), sets.cost) // no tokens used, nothing spent
	} else if r.usage != nil && r.backend != "" {
		m.TokenUsage.RecordSet(ctx, r.usage.PromptTokens, sets.input)
		m.TokenUsage.RecordSet(ctx, r.usage.CompletionTokens, sets.output)
		m.CostUSD.Add(ctx, r.cost.USD(), sets.cost)
		m.SavingsUSD.Add(ctx, r.savings.USD(), sets.cost)
		if r.attempts > 1 {
			m.Fallbacks.Add(ctx, 1, sets.fallbacks)
		}
	}
	if r.backend != "" && !r.cacheHit { // a hit's time is not its backend's
		m.Duration.RecordSet(ctx, time.Since(r.start).Seconds(), sets.duration)
		if r.stream && r.ttfc > 0 {
			m.TimeToFirstChunk.RecordSet(ctx, r.ttfc.Seconds(), sets.perChunk)
			if r.chunks > 1 {
				per := (time.Since(r.start) - r.ttfc).Seconds() / float64(r.chunks-1)
				m.TimePerChunk.RecordSet(ctx, per, sets.perChunk)
			}
		}
	}

	if sp := r.attemptSpan; sp != nil {
		attrs := make([]attribute.KeyValue, 0, 10)
		if r.respID != "" {
			attrs = append(attrs, attribute.String("gen_ai.response.id", r.respID))
		}
		if r.respModel != "" {
			attrs = append(attrs, attribute.String("gen_ai.response.model", r.respModel))
		}
		if len(r.finish) > 0 {
			attrs = append(attrs, attribute.StringSlice("gen_ai.response.finish_reasons", r.finish))
		}
		if u := r.usage; u != nil {
			attrs = append(attrs,
				attribute.Int64("gen_ai.usage.input_tokens", u.PromptTokens),
				attribute.Int64("gen_ai.usage.output_tokens", u.CompletionTokens),
				attribute.Int64("gen_ai.usage.cache_read.input_tokens", u.CachedTokens),
				attribute.Int64("gen_ai.usage.cache_creation.input_tokens", u.CacheWriteTokens),
				attrCostUSD.String(r.cost.String()),
			)
		}
		if r.stream && r.ttfc > 0 {
			attrs = append(attrs, attribute.Float64("gen_ai.response.time_to_first_chunk", r.ttfc.Seconds()))
		}
		if r.err != nil {
			attrs = append(attrs, attribute.String("error.type", r.err.Code))
			sp.SetStatus(codes.Error, r.err.Message)
		}
		sp.SetAttributes(attrs...)
		sp.End()
	}
	if sp := r.routeSpan; sp != nil {
		sp.End()
	}
	sp := r.span
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, attribute.Int("http.response.status_code", r.status), attrAttempts.Int(r.attempts))
	if r.decisionID != "" {
		attrs = append(attrs, attrDecisionID.String(r.decisionID))
	}
	if r.backend != "" {
		attrs = append(attrs, attrBackend.String(r.backend), attrBackendKind.String(kind), attrCostUSD.String(r.cost.String()))
	}
	if tenant != "" {
		attrs = append(attrs, attrTenant.String(tenant), attrTeam.String(team))
	}
	if r.err != nil {
		attrs = append(attrs, attribute.String("error.type", r.err.Code))
		if r.status >= 500 {
			sp.SetStatus(codes.Error, r.err.Message)
		}
	}
	sp.SetAttributes(attrs...)
	sp.End()
}

// savings is what the request would have cost on the team's reference
// proprietary model, minus what it cost.
func (s *Server) savings(r *record) pricing.Cost {
	if r.cacheHit {
		return r.cacheSaved // what the hit did not pay
	}
	if r.usage == nil || r.principal == nil {
		return 0
	}
	ref, ok := s.references[r.principal.Team]
	if !ok {
		ref, ok = s.references["default"]
	}
	if !ok {
		return 0
	}
	return ref.Cost(billed(r.usage)) - r.cost
}

// referencePrices prices each team's reference model once, from the
// default table; a model the table does not know prices no savings.
func referencePrices(models map[string]string) map[string]pricing.Price {
	out := make(map[string]pricing.Price, len(models))
	for team, model := range models {
		if usd, ok := pricing.Lookup(model); ok {
			out[team] = usd.Price()
		}
	}
	return out
}

// registerGauges reports state the gateway holds: backend health and quota
// store errors.
func (s *Server) registerGauges() error {
	health, err := s.tel.Meter.Int64ObservableGauge("switchyard.backend.healthy",
		metric.WithDescription("1 when a deployment is in rotation, 0 when its passive health took it out."))
	if err != nil {
		return err
	}
	storeErrs, err := s.tel.Meter.Int64ObservableCounter("switchyard.quota.store_errors",
		metric.WithDescription("Quota store operations that failed (Redis unreachable)."))
	if err != nil {
		return err
	}
	_, err = s.tel.Meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		seen := map[string]bool{}
		for _, rt := range s.router.Routes() {
			for _, d := range rt.Deployments {
				if seen[d.ID()] {
					continue
				}
				seen[d.ID()] = true
				v := int64(0)
				if d.Healthy() {
					v = 1
				}
				o.ObserveInt64(health, v, metric.WithAttributes(attribute.String("switchyard.deployment", d.ID()), attrBackendKind.String(d.Kind)))
			}
		}
		if s.quota.Enabled() {
			o.ObserveInt64(storeErrs, s.quota.Status().StoreErrors)
		}
		return nil
	}, health, storeErrs)
	return err
}
