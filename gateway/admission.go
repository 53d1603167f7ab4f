package gateway

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/metric"
)

// Admission control
//
// Past its ceiling a gateway that queues without bound trades every
// client's latency and its own memory for requests it will serve too late.
// The model API therefore holds at most server.max_in_flight requests at
// once (streams until their last event), and no more than
// backlogPerRequest times as many quota settlements and ledger writes
// waiting on their stores; one more is refused at once, before any other
// work, with 503 and Retry-After in its ingress's error shape,
// and counted in switchyard.requests.shed. Streams already started are never
// cut by it.

// localInFlight marks a request that holds a place in flight, released by
// emit.
const localInFlight = "switchyard.in_flight"

// perCPUInFlight is the default bound on requests in flight per CPU
// (GOMAXPROCS).
const perCPUInFlight = 128

// maxConnections is the bound server.max_connections sets: fasthttp's
// default (256 Ki) when it sets none. Idle keep-alive connections count
// against it, so a bound close to the load's own connection count locks
// new clients out after a burst until the burst's connections idle out.
func maxConnections(configured int) int {
	if configured > 0 {
		return configured
	}
	return fasthttp.DefaultConcurrency
}

// inFlight bounds the model API's requests in flight.
type inFlight struct {
	n     atomic.Int64
	limit int64 // <= 0: no bound
	shed  atomic.Int64
	// warned is when a shed was last logged (unix nanoseconds), and
	// logged the shed count then: one warning per shedWarnEvery at most.
	warned, logged atomic.Int64
}

// shedWarnEvery spaces the warnings about shed load.
const shedWarnEvery = 10 * time.Second

// maxInFlight is the bound server.max_in_flight sets: 0 for the default
// (perCPUInFlight per CPU), -1 for none.
func maxInFlight(configured int) int64 {
	switch {
	case configured < 0:
		return 0
	case configured == 0:
		return int64(perCPUInFlight * runtime.GOMAXPROCS(0))
	}
	return int64(configured)
}

// isModelCall reports whether c calls the model API (what admission
// control bounds), not health, metrics, the admin API or a listing.
func isModelCall(c *fiber.Ctx) bool {
	p := c.Path()
	return c.Method() == fiber.MethodPost && strings.HasPrefix(p, "/v1/") && !strings.HasPrefix(p, "/v1/switchyard/")
}

// admitInFlight takes a place in flight for a model call, or refuses it.
func (s *Server) admitInFlight(c *fiber.Ctx) error {
	f := &s.inFlight
	if f.limit <= 0 || !isModelCall(c) {
		return c.Next()
	}
	if f.n.Add(1) > f.limit || s.background.pending() > backlogPerRequest*f.limit {
		f.n.Add(-1)
		return s.shed(c)
	}
	c.Locals(localInFlight, true)
	return c.Next()
}

// releaseInFlight gives back r's place, once.
func (s *Server) releaseInFlight(r *record) {
	if r.inFlight {
		r.inFlight = false
		s.inFlight.n.Add(-1)
	}
}

// backlogPerRequest bounds the background work (quota settlements,
// ledger writes) waiting on the stores, per place in flight: past it, a
// store that falls behind slows admission down instead of piling work up.
const backlogPerRequest = 8

// shed refuses c: 503 with Retry-After, in the ingress's error shape. It
// is written here rather than through handleError: a refusal must cost
// next to nothing, so it makes no span, access-log line or ledger entry,
// only the metric and a warning every shedWarnEvery.
func (s *Server) shed(c *fiber.Ctx) error {
	f := &s.inFlight
	total := f.shed.Add(1)
	s.tel.Metrics.Shed.Add(context.Background(), 1)
	now := time.Now().UnixNano()
	if last := f.warned.Load(); now-last >= int64(shedWarnEvery) && f.warned.CompareAndSwap(last, now) {
		s.log.Warn("at capacity: refusing requests beyond server.max_in_flight", "max_in_flight", f.limit,
			"refused", total-f.logged.Swap(total))
	}
	e := &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "gateway_overloaded",
		Message: fmt.Sprintf("The gateway is at capacity (%d requests in flight); retry after 1 second.", f.limit)}
	c.Set(fiber.HeaderRetryAfter, "1")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	if strings.HasPrefix(c.Path(), messagesPrefix) {
		return c.Status(e.Status).Send(messagesErrorBody(e))
	}
	return c.Status(e.Status).Send(marshalError(e))
}

// registerInFlight observes the requests in flight.
func (s *Server) registerInFlight() error {
	g, err := s.tel.Meter.Int64ObservableGauge("switchyard.requests.in_flight",
		metric.WithDescription("Model API requests in flight (streams until their last event)."))
	if err != nil {
		return err
	}
	_, err = s.tel.Meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, s.inFlight.n.Load())
		return nil
	}, g)
	return err
}
