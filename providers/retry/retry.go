// Package retry retries an upstream's transient failures (429, 500, 502,
// 503, 504, 529 overloaded, connection resets) with jittered exponential
// backoff, honouring Retry-After, within the request's deadline, before the
// router falls back to another deployment.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/providers"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	// Attempts is the most tries in all; 1 or less never retries.
	Attempts int
	// Base is the first backoff; each retry doubles it, up to Max. The
	// sleep is drawn uniformly from [0, backoff] ("full jitter"), so
	// retrying gateways do not stampede in step.
	Base, Max time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; an upstream that
	// asks for more is left to the router's fallback at once. Zero means
	// Max.
	MaxRetryAfter time.Duration

	// Jitter returns a number in [0, 1); nil means math/rand/v2.
	Jitter func() float64
	// Sleep waits d or until ctx ends; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Provider wraps another provider with the policy.
type Provider struct {
	next providers.Provider
	p    Policy
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.NativeSpeaker = (*Provider)(nil)
)

// Wrap returns p retrying under pol; with one attempt it returns p itself.
func Wrap(p providers.Provider, pol Policy) providers.Provider {
	if pol.Attempts <= 1 {
		return p
	}
	if pol.MaxRetryAfter == 0 {
		pol.MaxRetryAfter = pol.Max
	}
	if pol.Jitter == nil {
		pol.Jitter = rand.Float64
	}
	if pol.Sleep == nil {
		pol.Sleep = sleep
	}
	return &Provider{next: p, p: pol}
}

// SpeaksNative reports whether the wrapped provider sends format as it is
// (providers.NativeSpeaker), so that wrapping hides nothing.
func (r *Provider) SpeaksNative(format string) bool {
	ns, ok := r.next.(providers.NativeSpeaker)
	return ok && ns.SpeaksNative(format)
}

// Do sends a request, retrying transient failures.
func (r *Provider) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	return try(ctx, r, func() (*providers.Response, error) { return r.next.Do(ctx, req) })
}

// Stream starts a stream, retrying transient failures before the stream is
// returned; failures after that (before or after the first event) are the
// router's to handle.
func (r *Provider) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	return try(ctx, r, func() (providers.Stream, error) { return r.next.Stream(ctx, req) })
}

func try[T any](ctx context.Context, r *Provider, call func() (T, error)) (T, error) {
	backoff := r.p.Base
	for attempt := 1; ; attempt++ {
		v, err := call()
		if err == nil || attempt >= r.p.Attempts || !transient(err) || ctx.Err() != nil {
			return v, err
		}
		wait := time.Duration(r.p.Jitter() * float64(backoff))
		if ra, ok := retryAfter(err); ok {
			if ra > r.p.MaxRetryAfter {
				return v, err // too long to hold the client: fall back now
			}
			wait = max(wait, ra)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return v, err // no time left for another try
		}
		if r.p.Sleep(ctx, wait) != nil {
			return v, err
		}
		backoff = min(2*backoff, r.p.Max)
	}
}

// transient reports whether the same upstream may well succeed if asked
// again: rate limits, overload, server errors, timeouts and dropped
// connections. Credential failures and 404 are retryable for the router (another
// deployment may work) but not here.
func transient(err error) bool {
	var e *providers.Error
	if !errors.As(err, &e) || !e.Retryable || e.Code == providers.CodeUpstreamAuth {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout, 529:
		return true
	}
	return false
}

// retryAfter reads Retry-After: seconds or an HTTP date.
func retryAfter(err error) (time.Duration, bool) {
	var e *providers.Error
	if !errors.As(err, &e) || e.RetryAfter == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(e.RetryAfter, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(e.RetryAfter); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
