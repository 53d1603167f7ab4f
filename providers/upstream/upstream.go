// Package upstream is the HTTP plumbing every provider shares: a pooled
// client with connect, first-byte and between-chunks timeouts, and the
// mapping of transport failures and error statuses to *providers.Error.
// Each provider reads its own wire format on top of it.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/providers"
)

// Limits on what is read from an upstream.
const (
	MaxResponseBytes = 128 << 20 // a large embeddings batch fits
	MaxErrorBytes    = 64 << 10
)

// Options configure a Client. Zero durations disable that timeout.
type Options struct {
	// Backend names the backend in error messages.
	Backend string
	// ConnectTimeout bounds dialling, TLS included.
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait for the response headers and, when
	// streaming, the first event.
	FirstByteTimeout time.Duration
	// BetweenChunksTimeout bounds the silence between two stream events,
	// and reading a non-streaming body once its headers arrived.
	BetweenChunksTimeout time.Duration
	// MaxIdleConns is the keep-alive pool size. Zero means 256.
	MaxIdleConns int
	// Transport overrides the pooled transport built from the options
	// above; nil builds one.
	Transport http.RoundTripper
}

// Client is one backend's HTTP client. It is safe for concurrent use.
type Client struct {
	o Options
	// HTTP sends the requests; attempts bound it with their context.
	HTTP *http.Client
}

// New returns a Client with its own keep-alive connection pool.
func New(o Options) *Client {
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = 256
	}
	rt := o.Transport
	if rt == nil {
		dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
		rt = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        o.MaxIdleConns,
			MaxIdleConnsPerHost: o.MaxIdleConns,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: o.ConnectTimeout,
		}
	}
	return &Client{o: o, HTTP: &http.Client{Transport: traceContext{rt}}}
}

// traceContext sends the W3C trace context of the request's span (the
// upstream attempt's) upstream as traceparent, so a traced upstream (vLLM,
// a collector-fronted API) joins the gateway's trace. The tracestate is
// not sent: it is text the client chose, carried over from its own
// context, and nothing the client writes reaches an upstream unscanned. A
// request without a span goes unchanged.
type traceContext struct{ next http.RoundTripper }

func (t traceContext) RoundTrip(req *http.Request) (*http.Response, error) {
	if sc := trace.SpanContextFromContext(req.Context()); sc.IsValid() {
		ctx := trace.ContextWithSpanContext(req.Context(), sc.WithTraceState(trace.TraceState{}))
		req = req.Clone(req.Context())
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return t.next.RoundTrip(req)
}

// Backend is the backend's name.
func (c *Client) Backend() string { return c.o.Backend }

// Attempt is one upstream call's context, canceled by a watchdog when the
// upstream goes silent: the first-byte timeout until the first sign of
// progress, then the between-chunks timeout after each.
type Attempt struct {
	Ctx     context.Context
	cancel  context.CancelCauseFunc
	t       *time.Timer
	between time.Duration
	started atomic.Bool
}

// forever stands in for a disabled (zero) timeout.
const forever = 100 * 365 * 24 * time.Hour

func orForever(d time.Duration) time.Duration {
	if d <= 0 {
		return forever
	}
	return d
}

// Start begins an attempt under ctx.
func (c *Client) Start(ctx context.Context) *Attempt {
	ctx, cancel := context.WithCancelCause(ctx)
	a := &Attempt{Ctx: ctx, cancel: cancel, between: orForever(c.o.BetweenChunksTimeout)}
	a.t = time.AfterFunc(orForever(c.o.FirstByteTimeout), func() {
		if a.started.Load() {
			cancel(providers.ErrBetweenChunksTimeout)
		} else {
			cancel(providers.ErrFirstByteTimeout)
		}
	})
	return a
}

// Progress records that data arrived and restarts the between-chunks clock.
func (a *Attempt) Progress() {
	a.started.Store(true)
	a.t.Reset(a.between)
}

// End stops the watchdog and cancels the attempt's context. It is safe to
// call more than once.
func (a *Attempt) End() {
	a.t.Stop()
	a.cancel(nil)
}

// TransportError maps a failure to send or read: the watchdog's timeouts
// become 504, the caller's cancellation is returned as is, anything else is
// an unreachable upstream (502). All but the caller's cancellation are
// retryable.
func (c *Client) TransportError(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, providers.ErrFirstByteTimeout), errors.Is(cause, providers.ErrBetweenChunksTimeout):
		return &providers.Error{
			Status: http.StatusGatewayTimeout, Type: "api_error", Code: providers.CodeUpstreamTimeout,
			Message: fmt.Sprintf("backend %q timed out: %v", c.o.Backend, cause), Retryable: true, Err: err,
		}
	case ctx.Err() != nil:
		return fmt.Errorf("upstream request to backend %q canceled: %w", c.o.Backend, cause)
	}
	return &providers.Error{
		Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamUnavailable,
		Message: fmt.Sprintf("backend %q is unreachable", c.o.Backend), Retryable: true, Err: err,
	}
}

// BadResponse is a 502 for an answer the provider's format does not allow
// (not JSON, a stream cut short, an unknown event); another deployment may
// do better.
func (c *Client) BadResponse(cause error, format string, args ...any) *providers.Error {
	return &providers.Error{
		Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamUnavailable,
		Message: fmt.Sprintf("backend %q: ", c.o.Backend) + fmt.Sprintf(format, args...), Retryable: true, Err: cause,
	}
}

// ReadError reads an error response's body, bounded.
func ReadError(resp *http.Response) []byte {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBytes))
	return data
}

// ErrorBody is what a provider's error response said.
type ErrorBody struct {
	Message, Type, Code, Param string
}

// Classify turns an upstream error status into an *providers.Error that
// keeps the status, the provider's message and code, with two exceptions:
// the upstream refusing the gateway's own credentials becomes a 502 (the
// client's key was fine, and the upstream's message may echo the gateway's
// key), and a 408 becomes a 504. Retryable are 404 (this deployment does
// not serve the model), 408, 429, 5xx (529 overloaded included) and
// credential failures: another attempt or deployment may succeed.
func (c *Client) Classify(status int, retryAfter string, b ErrorBody) *providers.Error {
	e := &providers.Error{Status: status, Type: b.Type, Code: b.Code, Param: b.Param, Message: b.Message,
		Err: fmt.Errorf("backend %q answered %d", c.o.Backend, status)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || b.Code == "invalid_api_key":
		e.Status, e.Type, e.Code, e.Param = http.StatusBadGateway, "api_error", providers.CodeUpstreamAuth, ""
		e.Message = fmt.Sprintf("backend %q refused the gateway's credentials (status %d)", c.o.Backend, status)
		e.Retryable = true
	case status == http.StatusRequestTimeout:
		e.Status, e.Type, e.Code = http.StatusGatewayTimeout, "api_error", providers.CodeUpstreamTimeout
		e.Retryable = true
	case status == http.StatusTooManyRequests:
		if e.Type == "" {
			e.Type = "rate_limit_error"
		}
		if e.Code == "" {
			e.Code = providers.CodeRateLimited
		}
		e.RetryAfter = retryAfter
		e.Retryable = true
	case status == http.StatusNotFound:
		e.Retryable = true
	case status >= 500 && status <= 599:
		e.RetryAfter = retryAfter
		e.Retryable = true
	case status < 400 || status > 599:
		e.Status, e.Type, e.Code = http.StatusBadGateway, "api_error", providers.CodeUpstreamUnavailable
		e.Message = fmt.Sprintf("backend %q answered with unexpected status %d", c.o.Backend, status)
		e.Retryable = true
	}
	if e.Type == "" {
		e.Type = providers.TypeForStatus(e.Status)
	}
	if e.Code == "" {
		e.Code = providers.CodeUpstreamError
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("backend %q answered %d %s", c.o.Backend, status, http.StatusText(status))
	}
	return e
}

// Send is one HTTP exchange under a.Ctx: send performs it; a transport
// failure is mapped by TransportError and an error status (>= 300) by
// statusError, with the body closed. On success the caller owns the body.
func (c *Client) Send(a *Attempt, send func(context.Context) (*http.Response, error), statusError func(*http.Response) error) (*http.Response, error) {
	resp, err := send(a.Ctx)
	if err != nil {
		return nil, c.TransportError(a.Ctx, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// Post is a non-streaming exchange under a: the answer's body, read whole
// (bounded by MaxResponseBytes).
func (c *Client) Post(a *Attempt, send func(context.Context) (*http.Response, error), statusError func(*http.Response) error) ([]byte, error) {
	resp, err := c.Send(a, send, statusError)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a.Progress()
	data, err := readBody(resp)
	if err != nil {
		return nil, c.TransportError(a.Ctx, err)
	}
	return data, nil
}

// readBody reads a response body whole, bounded by MaxResponseBytes: into
// one buffer of its Content-Length when it has one (io.ReadAll would grow
// a buffer from 512 bytes, copying as it goes), else as io.ReadAll does.
func readBody(resp *http.Response) ([]byte, error) {
	r := io.LimitReader(resp.Body, MaxResponseBytes)
	n := resp.ContentLength
	if n <= 0 || n > MaxResponseBytes {
		return io.ReadAll(r)
	}
	buf := make([]byte, n+1) // +1: the end is seen without growing
	got := 0
	for {
		m, err := r.Read(buf[got:])
		got += m
		switch {
		case err == io.EOF:
			return buf[:got], nil
		case err != nil:
			return buf[:got], err
		case got == len(buf): // longer than its Content-Length said
			rest, err := io.ReadAll(r)
			return append(buf[:got], rest...), err
		}
	}
}

// ErrNotAStream is the cause of OpenStream's error for an answer that is
// not of the stream's content type.
var ErrNotAStream = errors.New("not an event stream")

// OpenStream starts an attempt for a streaming exchange and checks that
// the answer is a stream of contentType (text/event-stream for SSE). On
// success the caller owns the attempt and the body; on failure both are
// released.
func (c *Client) OpenStream(ctx context.Context, contentType string, send func(context.Context) (*http.Response, error), statusError func(*http.Response) error) (*Attempt, io.ReadCloser, error) {
	a := c.Start(ctx)
	resp, err := c.Send(a, send, statusError)
	if err != nil {
		a.End()
		return nil, nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, contentType) {
		resp.Body.Close()
		a.End()
		return nil, nil, c.BadResponse(ErrNotAStream, "answered a streaming request with %q instead of an event stream (%s)", ct, contentType)
	}
	return a, resp.Body, nil
}
