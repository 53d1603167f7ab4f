package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/quota"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// record is what the access log says about one request. Prompt and
// completion text never go in it.
type record struct {
	places     place // held in flight and processing (admission.go) until settled
	requestID  string
	method     string
	path       string
	start      time.Time
	status     int
	principal  *Principal
	model      string         // public model asked for
	entities   map[string]int // sensitive data found, by label
	decisionID string         // the routing policy's decision
	backend    string
	upstream   string // upstream model
	stream     bool
	attempts   int
	usage      *providers.Usage
	cost       pricing.Cost
	err        *APIError
	ticket     *quota.Ticket // the quota reservation to settle

	// Telemetry: the request's span and context, the routing span, the
	// successful upstream attempt's span (ended with the usage), and what
	// the GenAI conventions record of the answer.
	counted      bool // in s.requests until emit
	emitted      bool
	op           providers.Operation
	route        string // the route's name: a known model, safe as a metric label
	ctx          context.Context
	span         trace.Span
	routeSpan    trace.Span
	routeSpanCtx context.Context
	attemptSpan  trace.Span
	maxTokens    int64
	temperature  *float64
	respID       string
	respModel    string
	finish       []string
	ttfc         time.Duration // a stream's time to first chunk
	chunks       int
	savings      pricing.Cost
	// cacheHit is true for a request answered from the response cache;
	// cacheSaved is what the stored answer cost when it was made.
	cacheHit    bool
	cacheSaved  pricing.Cost
	cacheResult string // hit, miss or bypass; empty for calls the cache never sees
}

func (s *Server) emit(r *record) {
	if r.emitted {
		return
	}
	r.emitted = true
	if r.counted {
		defer s.requests.done()
	}
	r.savings = s.savings(r)
	s.releaseInFlight(r)
	s.settleQuota(r)
	s.appendLedger(r)
	s.observe(r)
	level := slog.LevelInfo
	switch {
	case r.status >= 500:
		level = slog.LevelError
	case r.status >= 400:
		level = slog.LevelWarn
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("request_id", r.requestID),
		slog.String("method", r.method),
		slog.String("path", r.path),
		slog.Int("status", r.status),
		slog.Float64("duration_ms", float64(time.Since(r.start).Microseconds())/1000),
	)
	if p := r.principal; p != nil {
		attrs = append(attrs, slog.String("key_id", p.KeyID), slog.String("tenant", p.Tenant), slog.String("team", p.Team))
	}
	if r.model != "" {
		attrs = append(attrs, slog.String("model", r.model), slog.Bool("stream", r.stream))
	}
	if len(r.entities) > 0 {
		attrs = append(attrs, slog.Any("entities", r.entities))
	}
	if r.decisionID != "" {
		attrs = append(attrs, slog.String("decision_id", r.decisionID))
	}
	if r.backend != "" {
		attrs = append(attrs, slog.String("backend", r.backend), slog.String("upstream_model", r.upstream))
	}
	if r.attempts > 0 {
		attrs = append(attrs, slog.Int("attempts", r.attempts))
	}
	if u := r.usage; u != nil {
		attrs = append(attrs,
			slog.Int64("prompt_tokens", u.PromptTokens),
			slog.Int64("completion_tokens", u.CompletionTokens),
			slog.Int64("cached_tokens", u.CachedTokens),
			slog.Int64("cache_write_tokens", u.CacheWriteTokens),
			slog.Bool("usage_estimated", u.Estimated),
			slog.String("cost_usd", r.cost.String()),
		)
	}
	if e := r.err; e != nil {
		attrs = append(attrs, slog.String("error_code", e.Code), slog.String("error", e.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs...)
}

// accessLog answers errors here, so the status is known, and logs every
// request except streams, which log themselves when they end.
func (s *Server) accessLog(c *fiber.Ctx) error {
	r := &record{start: time.Now(), requestID: requestIDOf(c), method: strings.Clone(c.Method()), path: strings.Clone(c.Path())}
	r.counted = s.requests.start()
	r.places, _ = c.Locals(localInFlight).(place)
	s.startRequestSpan(c, r)
	c.Locals(localLog, r)
	defer func() {
		// A panic in a handler still ends the request: its quota is
		// settled, its spans end, it is logged. Fiber's recover, further
		// out, answers the client.
		if p := recover(); p != nil {
			r.status = fiber.StatusInternalServerError
			r.principal, _ = c.Locals(localPrincipal).(*Principal)
			r.err = toAPIError(fmt.Errorf("panic: %v", p))
			s.emit(r)
			panic(p)
		}
	}()
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	if r.span != nil {
		// The matched route, not the path: span names stay few.
		pattern := strings.Clone(c.Route().Path)
		r.span.SetName(r.method + " " + pattern)
		r.span.SetAttributes(attribute.String("http.route", pattern))
	}
	if streaming, _ := c.Locals(localStreaming).(bool); streaming {
		return nil
	}
	r.status = c.Response().StatusCode()
	r.principal, _ = c.Locals(localPrincipal).(*Principal)
	r.err, _ = c.Locals(localError).(*APIError)
	s.emit(r)
	return nil
}

func recordOf(c *fiber.Ctx) *record {
	r, _ := c.Locals(localLog).(*record)
	if r == nil {
		r = &record{start: time.Now()}
	}
	return r
}
