// Package router maps a public model name to its ordered deployments and
// runs a request through them: unhealthy deployments are skipped, and a
// retryable failure before anything reached the client moves on to the
// next deployment. Once the first byte has reached the client the request
// is never retried.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/tokens"
)

// Deployment is one backend serving one model.
type Deployment struct {
	// Backend is the backend's name from config.
	Backend string
	// Kind is local, selfhosted or proprietary.
	Kind string
	// Model is the upstream model name.
	Model string
	// Price is what one request's tokens cost here.
	Price pricing.Price
	// Provider speaks the backend's wire protocol.
	Provider providers.Provider
	// Tokens counts prompt tokens as the model does, for estimates and
	// reservations. It must be comparable (a pointer or a comparable
	// struct, not a tokens.Func) so that deployments sharing an encoding
	// count once. Nil counts by tokens.Approx.
	Tokens tokens.Encoding

	// health is shared by every route's deployment of the same backend and
	// model (New links them).
	health *health
}

// ID is "backend/model".
func (d *Deployment) ID() string { return d.Backend + "/" + d.Model }

// Healthy reports whether the deployment is currently tried.
func (d *Deployment) Healthy() bool { return d.health.healthy(time.Now()) }

// P95Latency is the 95th percentile of the last successful non-streaming
// attempts' durations; 0 before any.
func (d *Deployment) P95Latency() time.Duration { return d.health.latency.p95() }

// P95TTFT is the 95th percentile of the last streams' time to first event;
// 0 before any.
func (d *Deployment) P95TTFT() time.Duration { return d.health.ttft.p95() }

// Route is a public model name and its deployments in order of preference.
type Route struct {
	Name        string
	Aliases     []string
	Deployments []*Deployment
}

// Attempt is the outcome of trying one deployment.
type Attempt struct {
	Deployment *Deployment
	Err        error // nil on success
	Duration   time.Duration
}

// Router is safe for concurrent use once built.
type Router struct {
	routes []*Route
	byName map[string]*Route

	// OnAttempt, if not nil, is called after every attempt, successful or
	// not, from the request's goroutine. Telemetry hooks in here.
	OnAttempt func(Attempt)
	// StartAttempt, if not nil, is called before every attempt with the
	// request's context; the attempt runs in the context it returns (a
	// tracing span's), and end is called with the attempt's outcome. Nil
	// runs attempts in the request's context.
	StartAttempt func(ctx context.Context, d *Deployment) (attemptCtx context.Context, end func(Attempt))
}

// New builds a router over routes; names and aliases must be unique (config
// validation guarantees it).
func New(routes []*Route) *Router {
	r := &Router{routes: routes, byName: map[string]*Route{}}
	shared := map[string]*health{}
	for _, rt := range routes {
		r.byName[rt.Name] = rt
		for _, a := range rt.Aliases {
			r.byName[a] = rt
		}
		for _, d := range rt.Deployments {
			if shared[d.ID()] == nil {
				shared[d.ID()] = &health{}
			}
			d.health = shared[d.ID()]
		}
	}
	return r
}

// Lookup finds the route for a public model name or alias.
func (r *Router) Lookup(model string) (*Route, bool) {
	rt, ok := r.byName[model]
	return rt, ok
}

// Routes returns every route in config order.
func (r *Router) Routes() []*Route { return r.routes }

// Result is a successful non-streaming call.
type Result struct {
	Deployment *Deployment
	Response   *providers.Response
	Attempts   []Attempt
}

// StreamResult is a stream that delivered its first event (or ended
// cleanly) on Deployment. Reading it replays that first event.
type StreamResult struct {
	Deployment *Deployment
	Stream     providers.Stream
	Attempts   []Attempt
}

// ErrNoDeployment is returned when a route has no deployment to try.
var ErrNoDeployment = errors.New("no deployment available")

// ExhaustedError is a request that failed on more than one deployment:
// every attempt, and the error to answer with (Err, which it unwraps to:
// the last, or a rate limit seen on the way).
type ExhaustedError struct {
	Attempts []Attempt
	// Skipped are the route's deployments not tried because they were
	// out of rotation (Cooldown after repeated failures).
	Skipped []*Deployment
	Err     error
}

func (e *ExhaustedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d deployments failed:", len(e.Attempts))
	for i, a := range e.Attempts {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s: %v", a.Deployment.ID(), a.Err)
	}
	for _, d := range e.Skipped {
		fmt.Fprintf(&b, "; %s: skipped, out of rotation", d.ID())
	}
	return b.String()
}

func (e *ExhaustedError) Unwrap() error { return e.Err }

// Do runs a non-streaming request through the route's deployments.
func (r *Router) Do(ctx context.Context, rt *Route, req *providers.Request) (*Result, error) {
	var resp *providers.Response
	d, attempts, err := r.try(ctx, rt, req, false, func(ctx context.Context, d *Deployment) (err error) {
		resp, err = d.Provider.Do(ctx, req)
		return err
	})
	return &Result{Deployment: d, Response: resp, Attempts: attempts}, err
}

// Stream opens a stream on the first deployment that delivers its first
// event. A failure up to and including the first event falls back; the
// caller commits to the client only after Stream returns.
func (r *Router) Stream(ctx context.Context, rt *Route, req *providers.Request) (*StreamResult, error) {
	var stream providers.Stream
	d, attempts, err := r.try(ctx, rt, req, true, func(ctx context.Context, d *Deployment) error {
		s, err := d.Provider.Stream(ctx, req)
		if err != nil {
			return err
		}
		first, err := s.Recv()
		switch {
		case err == nil:
			stream = &peeked{Stream: s, first: first, has: true}
		case errors.Is(err, io.EOF):
			stream = &peeked{Stream: s, eof: true}
		default:
			s.Close()
			return err
		}
		return nil
	})
	return &StreamResult{Deployment: d, Stream: stream, Attempts: attempts}, err
}

// try calls attempt on each deployment in turn until one succeeds, an error
// is not retryable, or ctx is done. It returns the deployment that
// succeeded (nil on failure), every attempt, and the error to answer with:
// the last one, except that a rate limit seen on the way wins over a later
// failure, so the client still learns to back off (and when).
func (r *Router) try(ctx context.Context, rt *Route, req *providers.Request, stream bool, attempt func(context.Context, *Deployment) error) (*Deployment, []Attempt, error) {
	var attempts []Attempt
	var last, limited error
	order := r.order(rt)
	for _, d := range order {
		start := time.Now()
		req.Model = d.Model
		actx, end := ctx, func(Attempt) {}
		if r.StartAttempt != nil {
			actx, end = r.StartAttempt(ctx, d)
		}
		err := attempt(actx, d)
		attempts = r.record(ctx, attempts, d, err, start, stream)
		end(attempts[len(attempts)-1])
		if err == nil {
			if took := attempts[len(attempts)-1].Duration; stream {
				d.health.ttft.add(took)
			} else {
				d.health.latency.add(took)
			}
			return d, attempts, nil
		}
		last = err
		if isRateLimit(err) {
			limited = err
		}
		if !providers.IsRetryable(err) || ctx.Err() != nil {
			break
		}
	}
	switch {
	case last == nil:
		return nil, attempts, ErrNoDeployment
	case limited != nil && providers.IsRetryable(last) && ctx.Err() == nil:
		last = limited
	}
	var skipped []*Deployment
	if len(order) < len(rt.Deployments) {
		skipped = slices.DeleteFunc(slices.Clone(rt.Deployments), func(d *Deployment) bool { return slices.Contains(order, d) })
	}
	if len(attempts) > 1 || len(skipped) > 0 {
		return nil, attempts, &ExhaustedError{Attempts: attempts, Skipped: skipped, Err: last}
	}
	return nil, attempts, last
}

func isRateLimit(err error) bool {
	var e *providers.Error
	return errors.As(err, &e) && e.Status == http.StatusTooManyRequests
}

// Report records how a stream that delivered its first event ended: nil or
// io.EOF for a clean end, which counts as the deployment's success; a
// retryable error (the upstream cut the stream, timed out between events,
// or sent an error event such as overloaded) counts against its health
// like a failed attempt. Other errors (the client went away, a request the
// upstream refused) say nothing about the deployment. A stream's start is
// not a success: a deployment that breaks every stream mid-way must reach
// FailureThreshold, so only Report's clean end resets the count.
func (r *Router) Report(d *Deployment, err error) {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		d.health.success()
	case providers.IsRetryable(err):
		d.health.failure(time.Now())
	}
}

// order is the deployments to try: healthy ones in config order, or, when
// every deployment is unhealthy, all of them, since trying beats refusing.
func (r *Router) order(rt *Route) []*Deployment {
	now := time.Now()
	healthy := true
	for _, d := range rt.Deployments {
		if !d.health.healthy(now) {
			healthy = false
			break
		}
	}
	if healthy {
		return rt.Deployments
	}
	out := slices.DeleteFunc(slices.Clone(rt.Deployments), func(d *Deployment) bool { return !d.health.healthy(now) })
	if len(out) == 0 {
		return rt.Deployments
	}
	return out
}

// record notes an attempt's outcome. A failure caused by the caller going
// away says nothing about the deployment and does not count against it. A
// stream's first event is not yet a success (see Report).
func (r *Router) record(ctx context.Context, attempts []Attempt, d *Deployment, err error, start time.Time, stream bool) []Attempt {
	now := time.Now()
	switch {
	case err == nil:
		if !stream {
			d.health.success()
		}
	case ctx.Err() != nil:
	case providers.IsRetryable(err):
		d.health.failure(now)
	}
	a := Attempt{Deployment: d, Err: err, Duration: now.Sub(start)}
	if r.OnAttempt != nil {
		r.OnAttempt(a)
	}
	return append(attempts, a)
}

// Health is passive: FailureThreshold consecutive retryable failures take a
// deployment out of rotation for Cooldown; after that it is tried again,
// and one success resets it.
const (
	FailureThreshold = 3
	Cooldown         = 10 * time.Second
)

type health struct {
	failures  atomic.Int32
	downUntil atomic.Int64 // unix nanoseconds

	// Recent successful attempts: whole-response latency (JSON) and time
	// to the first event (streams).
	latency, ttft window
}

// window keeps the last windowSize samples, and their p95 once asked.
type window struct {
	mu      sync.Mutex
	samples [windowSize]time.Duration
	n, next int
	p95ok   bool // cached is the p95 of the current samples
	cached  time.Duration
}

const windowSize = 64

func (w *window) add(d time.Duration) {
	w.mu.Lock()
	w.samples[w.next] = d
	w.next = (w.next + 1) % windowSize
	w.n = min(w.n+1, windowSize)
	w.p95ok = false
	w.mu.Unlock()
}

// p95 is the 95th percentile of the samples; 0 when there are none.
func (w *window) p95() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.p95ok || w.n == 0 {
		return w.cached
	}
	var s [windowSize]time.Duration
	copy(s[:], w.samples[:w.n])
	slices.Sort(s[:w.n])
	w.cached, w.p95ok = s[(w.n*95+99)/100-1], true
	return w.cached
}

func (h *health) healthy(now time.Time) bool { return now.UnixNano() >= h.downUntil.Load() }

func (h *health) success() {
	if h.failures.Load() != 0 {
		h.failures.Store(0)
	}
}

func (h *health) failure(now time.Time) {
	if h.failures.Add(1) >= FailureThreshold {
		h.downUntil.Store(now.Add(Cooldown).UnixNano())
		h.failures.Store(0)
	}
}

// peeked replays the first event a stream delivered.
type peeked struct {
	providers.Stream
	first providers.Event
	has   bool
	eof   bool
}

func (p *peeked) Recv() (providers.Event, error) {
	if p.has {
		p.has = false
		return p.first, nil
	}
	if p.eof {
		return providers.Event{}, io.EOF
	}
	return p.Stream.Recv()
}
