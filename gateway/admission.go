package gateway

import (
	"context"
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
// Two bounds, on the model API only:
//
//   - server.max_processing: requests the gateway is working on: from
//     arrival until their upstream call starts (parse, classify, policy,
//     quotas), and a JSON answer from its arrival until it is sent and
//     recorded. The CPU-bound part, where a queue forms when the CPUs
//     cannot keep up.
//   - server.max_in_flight: every request open, those waiting on a model
//     and streams being relayed included: these cost memory, hardly CPU,
//     and an LLM's answer takes seconds, so this bound is much higher.
//
// Past either, or with more than backlogPerRequest times max_processing
// quota settlements and ledger writes waiting on their stores, a request
// is refused at once, before any other work, with 503 and Retry-After in
// its ingress's error shape, and counted in switchyard.requests.shed.
// Streams already started are never cut by it.

// localInFlight marks a request that holds places (a place value),
// released by emit.
const localInFlight = "switchyard.in_flight"

// place is the places a request holds: in flight and, while the gateway
// works on it, processing.
type place uint8

const (
	placeInFlight place = 1 << iota
	placeProcessing
	placeWaiting // gave its place processing back while it waits on its model
)

// perCPUProcessing and perCPUInFlight are the default bounds per CPU
// (GOMAXPROCS).
const (
	perCPUProcessing = 64
	perCPUInFlight   = 256
)

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

// inFlight bounds the model API's requests in flight and processing.
type inFlight struct {
	n, processing          atomic.Int64
	limit, processingLimit int64 // <= 0: no bound
	shed                   atomic.Int64
	// warned is when a shed was last logged (unix nanoseconds), and
	// logged the shed count then: one warning per shedWarnEvery at most.
	warned, logged atomic.Int64
}

// shedWarnEvery spaces the warnings about shed load.
const shedWarnEvery = 10 * time.Second

// bound is the bound a server.max_* setting sets: 0 for the default
// (perCPU per CPU), -1 (0 here) for none.
func bound(configured, perCPU int) int64 {
	switch {
	case configured < 0:
		return 0
	case configured == 0:
		return int64(perCPU * runtime.GOMAXPROCS(0))
	}
	return int64(configured)
}

// isModelCall reports whether c calls the model API (what admission
// control bounds), not health, metrics, the admin API or a listing.
func isModelCall(c *fiber.Ctx) bool {
	p := c.Path()
	return c.Method() == fiber.MethodPost && strings.HasPrefix(p, "/v1/") && !strings.HasPrefix(p, "/v1/switchyard/")
}

// admitInFlight takes a place in flight and one processing for a model
// call, or refuses it.
func (s *Server) admitInFlight(c *fiber.Ctx) error {
	f := &s.inFlight
	if !isModelCall(c) || f.limit <= 0 && f.processingLimit <= 0 {
		return c.Next()
	}
	var held place
	if f.limit > 0 {
		held |= placeInFlight
		if f.n.Add(1) > f.limit {
			return s.refuse(c, held)
		}
	}
	if f.processingLimit > 0 {
		held |= placeProcessing
		if f.processing.Add(1) > f.processingLimit || s.background.pending() > backlogPerRequest*f.processingLimit {
			return s.refuse(c, held)
		}
	}
	c.Locals(localInFlight, held)
	return c.Next()
}

// refuse gives back the places a refused request took and sheds it.
func (s *Server) refuse(c *fiber.Ctx, held place) error {
	s.release(held)
	return s.shed(c)
}

// release gives back the places in held.
func (s *Server) release(held place) {
	if held&placeInFlight != 0 {
		s.inFlight.n.Add(-1)
	}
	if held&placeProcessing != 0 {
		s.inFlight.processing.Add(-1)
	}
}

// waiting gives back r's place processing while it waits on its model:
// its upstream call is starting.
func (s *Server) waiting(r *record) {
	if r.places&placeProcessing != 0 {
		r.places = r.places&^placeProcessing | placeWaiting
		s.inFlight.processing.Add(-1)
	}
}

// answered takes r's place processing back, without refusal, for the work
// on its JSON answer. A stream's relay does not: it mostly waits on its
// model, bounded by max_in_flight only.
func (s *Server) answered(r *record) {
	if r.places&placeWaiting != 0 {
		r.places = r.places&^placeWaiting | placeProcessing
		s.inFlight.processing.Add(1)
	}
}

// releaseInFlight gives back every place r holds, once.
func (s *Server) releaseInFlight(r *record) {
	s.release(r.places)
	r.places = 0
}

// backlogPerRequest bounds the background work (quota settlements,
// ledger writes) waiting on the stores, per place processing: past it, a
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
		s.log.Warn("at capacity: refusing requests beyond server.max_in_flight or server.max_processing",
			"max_in_flight", f.limit, "max_processing", f.processingLimit, "refused", total-f.logged.Swap(total))
	}
	e := &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "gateway_overloaded",
		Message: "The gateway is at capacity; retry after 1 second."}
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
	a, err := s.tel.Meter.Int64ObservableGauge("switchyard.requests.processing",
		metric.WithDescription("Model API requests being prepared: arrived, their first upstream attempt not yet started."))
	if err != nil {
		return err
	}
	_, err = s.tel.Meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, s.inFlight.n.Load())
		o.ObserveInt64(a, s.inFlight.processing.Load())
		return nil
	}, g, a)
	return err
}
