// Package openai is the provider for OpenAI and every OpenAI-compatible
// upstream: vLLM, SGLang, llama-server, Ollama, Together, Groq, Mistral.
//
// Requests are forwarded as the client sent them with two edits: the model
// is set to the deployment's upstream model, and streaming requests ask for
// usage in the final chunk (stream_options.include_usage), so the gateway
// can always bill a stream. Responses are relayed as bytes; streams event by
// event.
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
)

// Limits on what is read from an upstream.
const (
	maxResponseBytes = 128 << 20 // a large embeddings batch fits
	maxErrorBytes    = 64 << 10
)

// Options configure a Client. Zero durations disable that timeout.
type Options struct {
	// Backend names the backend in error messages.
	Backend string
	// BaseURL is the API root, for example https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer"; empty sends none.
	APIKey string
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

// Client speaks the OpenAI API to one upstream. It is safe for concurrent use.
type Client struct {
	o    Options
	base string
	auth string
	http *http.Client
}

var _ providers.Provider = (*Client)(nil)

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
	c := &Client{
		o:    o,
		base: strings.TrimRight(o.BaseURL, "/"),
		http: &http.Client{Transport: rt},
	}
	if o.APIKey != "" {
		c.auth = "Bearer " + o.APIKey
	}
	return c
}

// Do sends a non-streaming request.
func (c *Client) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	body, err := c.body(req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := c.newWatchdog(cancel)
	defer w.stop()

	resp, err := c.send(ctx, req, body)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, c.statusError(resp)
	}
	w.progress()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if !gjson.ValidBytes(data) {
		return nil, &providers.Error{
			Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamUnavailable,
			Message: fmt.Sprintf("backend %q sent a response that is not JSON", c.o.Backend), Retryable: true,
		}
	}
	return &providers.Response{Body: data, Usage: ParseUsage(gjson.GetBytes(data, "usage"))}, nil
}

// Stream starts a streaming request.
func (c *Client) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	body, err := c.body(req, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := c.newWatchdog(cancel)
	resp, err := c.send(ctx, req, body)
	if err != nil {
		w.stop()
		err = c.transportError(ctx, err)
		cancel(nil)
		return nil, err
	}
	if resp.StatusCode >= 300 {
		w.stop()
		err = c.statusError(resp)
		resp.Body.Close()
		cancel(nil)
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		w.stop()
		resp.Body.Close()
		cancel(nil)
		return nil, &providers.Error{
			Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamUnavailable,
			Message:   fmt.Sprintf("backend %q answered a streaming request with %q instead of an event stream", c.o.Backend, ct),
			Retryable: true,
		}
	}
	return &stream{c: c, ctx: ctx, cancel: cancel, w: w, body: resp.Body, r: sse.NewReader(resp.Body)}, nil
}

// body rewrites the client's body for the upstream.
func (c *Client) body(req *providers.Request, stream bool) ([]byte, error) {
	body, err := sjson.SetBytes(req.Body, "model", req.Model)
	if err == nil && stream && req.Operation != providers.OpEmbeddings &&
		!gjson.GetBytes(body, "stream_options.include_usage").Bool() {
		body, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	}
	if err != nil {
		return nil, fmt.Errorf("rewriting request body: %w", err)
	}
	return body, nil
}

func (c *Client) send(ctx context.Context, req *providers.Request, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+req.Operation.Path(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	if req.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if c.auth != "" {
		h.Set("Authorization", c.auth)
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
	return c.http.Do(hreq)
}

// watchdog cancels an attempt that goes silent: first-byte timeout until
// the first sign of progress, then the between-chunks timeout after each.
// Its methods are safe to call from any goroutine.
type watchdog struct {
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

func (c *Client) newWatchdog(cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{between: orForever(c.o.BetweenChunksTimeout)}
	w.t = time.AfterFunc(orForever(c.o.FirstByteTimeout), func() {
		if w.started.Load() {
			cancel(providers.ErrBetweenChunksTimeout)
		} else {
			cancel(providers.ErrFirstByteTimeout)
		}
	})
	return w
}

// progress records that data arrived and restarts the between-chunks clock.
func (w *watchdog) progress() {
	w.started.Store(true)
	w.t.Reset(w.between)
}

func (w *watchdog) stop() { w.t.Stop() }

// transportError maps a failure to send or read: our own timeouts become
// 504, the caller's cancellation is returned as is, anything else is an
// unreachable upstream (502).
func (c *Client) transportError(ctx context.Context, err error) error {
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

// statusError maps an upstream error response.
func (c *Client) statusError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	return c.classify(resp.StatusCode, resp.Header.Get("Retry-After"), data)
}

// eventError maps an error event inside a stream ({"error":{...}}), using
// the event's numeric code as the status when it has one.
func (c *Client) eventError(data []byte) error {
	status := http.StatusBadGateway
	if code := gjson.GetBytes(data, "error.code"); code.Type == gjson.Number && code.Int() >= 400 && code.Int() <= 599 {
		status = int(code.Int())
	}
	e := c.classify(status, "", data)
	e.Retryable = e.Retryable || status == http.StatusBadGateway
	return e
}

// classify turns an upstream error into an *providers.Error that keeps its
// status, message and code, with two exceptions: the upstream refusing the
// gateway's own credentials becomes a 502 (the client's key was fine, and
// the upstream's message may echo the gateway's key), and a 408 becomes a
// 504. Retryable are 404 (this deployment does not serve the model), 408,
// 429, 5xx and credential failures: another deployment may succeed.
func (c *Client) classify(status int, retryAfter string, data []byte) *providers.Error {
	msg, typ, code, param := parseError(data)
	e := &providers.Error{Status: status, Type: typ, Code: code, Param: param, Message: msg,
		Err: fmt.Errorf("backend %q answered %d", c.o.Backend, status)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || code == "invalid_api_key":
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

// parseError reads the error shapes OpenAI-compatible servers use:
// {"error":{"message","type","code","param"}}, {"message","type","code"}
// (vLLM), {"error":"..."} (Ollama) and {"detail":"..."} (FastAPI).
func parseError(data []byte) (msg, typ, code, param string) {
	if !gjson.ValidBytes(data) {
		return "", "", "", ""
	}
	root := gjson.ParseBytes(data)
	e := root.Get("error")
	if e.Type == gjson.String {
		return e.String(), "", "", ""
	}
	if !e.IsObject() {
		e = root
	}
	msg = e.Get("message").String()
	if msg == "" {
		msg = root.Get("detail").String()
	}
	if t := e.Get("type"); t.Type == gjson.String {
		typ = t.String()
	}
	if c := e.Get("code"); c.Type == gjson.String {
		code = c.String()
	}
	if p := e.Get("param"); p.Type == gjson.String {
		param = p.String()
	}
	return msg, typ, code, param
}

// ParseUsage reads an OpenAI usage object; nil when there is none.
func ParseUsage(u gjson.Result) *providers.Usage {
	if !u.IsObject() {
		return nil
	}
	return &providers.Usage{
		PromptTokens:     u.Get("prompt_tokens").Int(),
		CompletionTokens: u.Get("completion_tokens").Int(),
		CachedTokens:     u.Get("prompt_tokens_details.cached_tokens").Int(),
	}
}

type stream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelCauseFunc
	w      *watchdog
	body   io.ReadCloser
	r      *sse.Reader
	once   sync.Once
}

func (s *stream) Recv() (providers.Event, error) {
	for {
		ev, err := s.r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && s.ctx.Err() == nil {
				// Every OpenAI-compatible server ends with [DONE]; an end
				// without it is a stream cut short.
				return providers.Event{}, &providers.Error{
					Status: http.StatusBadGateway, Type: "api_error", Code: providers.CodeUpstreamUnavailable,
					Message:   fmt.Sprintf("backend %q ended the stream without [DONE]", s.c.o.Backend),
					Retryable: true, Err: io.ErrUnexpectedEOF,
				}
			}
			return providers.Event{}, s.c.transportError(s.ctx, err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		if bytes.Equal(ev.Data, []byte("[DONE]")) {
			return providers.Event{}, io.EOF
		}
		s.w.progress()
		if ev.Name == "error" || bytes.Contains(ev.Data, []byte(`"error"`)) && gjson.GetBytes(ev.Data, "error").Exists() {
			return providers.Event{}, s.c.eventError(ev.Data)
		}
		out := providers.Event{Data: ev.Data}
		if bytes.Contains(ev.Data, []byte(`"usage"`)) {
			if u := gjson.GetBytes(ev.Data, "usage"); u.IsObject() {
				out.Usage = ParseUsage(u)
				out.UsageOnly = gjson.GetBytes(ev.Data, "choices.#").Int() == 0
			}
		}
		return out, nil
	}
}

func (s *stream) Close() error {
	s.once.Do(func() {
		s.w.stop()
		s.cancel(nil)
		s.body.Close()
	})
	return nil
}
