package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// The native Responses path: the client spoke OpenAI's Responses API to
// the gateway and this upstream serves it (Options.Responses), so the
// client's own request goes to POST {base}/responses with only "model"
// rewritten (reasoning, include, truncation, service_tier and members this
// package has never heard of included), and OpenAI's answer comes back as
// it is: the Response object, or each event's data. The gateway has
// already made the request stateless (history inlined, store false); the
// endpoint's headers, timeouts and error mapping are the chat path's.

// SpeaksNative reports whether the client sends requests in format as they
// are: OpenAI's Responses API, when the upstream serves it.
func (c *Client) SpeaksNative(format string) bool {
	if format != providers.FormatOpenAIResponses {
		return false
	}
	switch c.o.Responses {
	case ResponsesOn:
		return true
	case ResponsesProbe:
		return !c.noResponses.Load()
	}
	return false
}

// lacksResponses reports whether err says the upstream has no
// /responses, for a probing client that has not seen it answer there yet,
// and remembers it: the request is then translated, as every later one.
// The signs: 404, 405 or 501, or an answer that is not the Responses API's
// (a chat completion, JSON to a streaming request: servers that answer
// any path alike).
func (c *Client) lacksResponses(err error) bool {
	var pe *providers.Error
	if c.o.Responses != ResponsesProbe || c.hasResponses.Load() || !errors.As(err, &pe) {
		return false
	}
	switch {
	case pe.Status == http.StatusNotFound, pe.Status == http.StatusMethodNotAllowed, pe.Status == http.StatusNotImplemented,
		errors.Is(err, errNotResponses), errors.Is(err, upstream.ErrNotAStream):
		c.noResponses.Store(true)
		return true
	}
	return false
}

// errNotResponses is the cause of the error for an answer, or a first
// event, that is not the Responses API's.
var errNotResponses = errors.New("not a Responses API answer")

// translated is req without its native request.
func translated(req *providers.Request) *providers.Request {
	r := *req
	r.Native = nil
	return &r
}

var _ providers.NativeSpeaker = (*Client)(nil)

// isNative reports whether req is sent natively.
func (c *Client) isNative(req *providers.Request) bool {
	return req.Native != nil && c.SpeaksNative(req.Native.Format)
}

// responsesPath is the Responses API below the base URL.
const responsesPath = "/responses"

// nativeBody is the client's Responses body with the upstream model.
func nativeBody(req *providers.Request) ([]byte, error) {
	if !gjson.ValidBytes(req.Native.Body) || !gjson.ParseBytes(req.Native.Body).IsObject() {
		return nil, &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_json",
			Message: "the request body is not a JSON object"}
	}
	body, err := sjson.SetBytes(req.Native.Body, "model", req.Model)
	if err != nil {
		return nil, fmt.Errorf("rewriting request body: %w", err)
	}
	return body, nil
}

// doNative sends the client's own Responses request and returns the
// Response object as it came.
func (c *Client) doNative(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	body, err := nativeBody(req)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()
	data, err := c.Post(a, func(ctx context.Context) (*http.Response, error) { return c.sendTo(ctx, responsesPath, req, body) }, c.statusError)
	if c.lacksResponses(err) {
		return c.Do(ctx, translated(req))
	}
	if err != nil {
		return nil, err
	}
	r := gjson.ParseBytes(data)
	if !gjson.ValidBytes(data) || r.Get("object").Str != "response" {
		err := c.BadResponse(errNotResponses, "sent a response that is not a Responses API response object")
		if c.lacksResponses(err) {
			return c.Do(ctx, translated(req))
		}
		return nil, err
	}
	c.hasResponses.Store(true)
	if r.Get("status").Str == "failed" {
		return nil, c.failed(r.Get("error"))
	}
	return &providers.Response{Body: data, Usage: ResponsesUsage(r.Get("usage")), Native: true}, nil
}

// streamNative starts the client's own request as a stream of Responses
// events.
func (c *Client) streamNative(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	body, err := nativeBody(req)
	if err != nil {
		return nil, err
	}
	a, rc, err := c.OpenStream(ctx, "text/event-stream", func(ctx context.Context) (*http.Response, error) { return c.sendTo(ctx, responsesPath, req, body) }, c.statusError)
	if c.lacksResponses(err) {
		return c.Stream(ctx, translated(req))
	}
	if err != nil {
		return nil, err
	}
	s := c.newResponsesStream(a, rc)
	if c.o.Responses != ResponsesProbe || c.hasResponses.Load() {
		return s, nil
	}
	// Probing: the first event says whether this is the Responses API.
	first, err := s.Recv()
	if c.lacksResponses(err) {
		s.Close()
		return c.Stream(ctx, translated(req))
	}
	if err == nil {
		c.hasResponses.Store(true)
	}
	return &firstEvent{responsesStream: s, first: first, err: err, has: true}, nil
}

// ResponsesUsage reads a Responses usage object (input_tokens,
// output_tokens, input_tokens_details.cached_tokens); nil when there is
// none.
func ResponsesUsage(u gjson.Result) *providers.Usage {
	if !u.IsObject() {
		return nil
	}
	return &providers.Usage{
		PromptTokens:     u.Get("input_tokens").Int(),
		CompletionTokens: u.Get("output_tokens").Int(),
		CachedTokens:     u.Get("input_tokens_details.cached_tokens").Int(),
	}
}

// failed is the error of a response whose status is failed: its error
// object's code and message, as a 502 (429 for a rate limit), retryable as
// a server error is.
func (c *Client) failed(e gjson.Result) *providers.Error {
	status := http.StatusBadGateway
	if e.Get("code").Str == "rate_limit_exceeded" {
		status = http.StatusTooManyRequests
	}
	msg := e.Get("message").Str
	if msg == "" {
		msg = "the response failed"
	}
	return c.Classify(status, "", upstream.ErrorBody{Message: msg, Type: "api_error", Code: e.Get("code").Str})
}

// firstEvent is a stream whose first event (or error) was read already.
type firstEvent struct {
	*responsesStream
	first providers.Event
	err   error
	has   bool
}

func (f *firstEvent) Recv() (providers.Event, error) {
	if f.has {
		f.has = false
		return f.first, f.err
	}
	return f.responsesStream.Recv()
}

// responsesStream relays the Responses events as they came, one Event per
// SSE event. The stream ends cleanly after response.completed or
// response.incomplete, which carry the usage; response.failed and error
// events end it with an error; an end before a terminal event is a stream
// cut short. Events before response.created are refused, so that a failure
// before it comes back from the first Recv as an error.
type responsesStream struct {
	*upstream.Events
	c       *Client
	started bool // response.created was read
}

func (c *Client) newResponsesStream(a *upstream.Attempt, body io.ReadCloser) *responsesStream {
	return &responsesStream{Events: c.Events(a, body, "ended the stream before response.completed"), c: c}
}

func (s *responsesStream) Recv() (providers.Event, error) {
	for {
		ev, err := s.Next()
		if err != nil {
			return providers.Event{}, err
		}
		if bytes.Equal(ev.Data, []byte("[DONE]")) {
			continue // some compatible servers end with it; the terminal event decides
		}
		out, err := s.handle(ev)
		if err != nil {
			return providers.Event{}, s.Fail(err)
		}
		return out, nil
	}
}

// handle reads one event. Its Data is the reader's, valid until the next
// read.
func (s *responsesStream) handle(ev sse.Event) (providers.Event, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(ev.Data, &head); err != nil || head.Type == "" {
		return providers.Event{}, s.c.BadResponse(errors.Join(errNotResponses, err), "sent an event that is not a Responses API event")
	}
	out := providers.Event{Data: ev.Data, Native: true}
	switch head.Type {
	case "error":
		return out, s.c.eventError(ev.Data)
	case "response.created":
		if s.started {
			return out, s.c.BadResponse(nil, "sent a second response.created")
		}
		s.started = true
		return out, nil
	}
	if !s.started {
		return out, s.c.BadResponse(nil, "sent %s before response.created", head.Type)
	}
	switch head.Type {
	case "response.failed":
		return out, s.c.failed(gjson.GetBytes(ev.Data, "response.error"))
	case "response.completed", "response.incomplete":
		s.Finish()
		out.Usage = ResponsesUsage(gjson.GetBytes(ev.Data, "response.usage"))
	}
	return out, nil
}
