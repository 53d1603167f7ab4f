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
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Options configure a Client.
type Options struct {
	upstream.Options
	// BaseURL is the API root, for example https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer"; empty sends none.
	APIKey string
	// Header holds extra headers sent with every request (Azure's api-key,
	// an organisation id).
	Header http.Header
	// Query is appended to every URL (Azure's api-version).
	Query string
	// Path maps an operation to the URL path below BaseURL; nil means
	// Operation.Path (Azure puts the deployment in the path).
	Path func(providers.Operation, string) string
	// Responses is whether the upstream serves OpenAI's Responses API
	// (POST {BaseURL}/responses), where a Responses request is sent as the
	// client wrote it (providers.FormatOpenAIResponses) instead of
	// translated to chat completions: ResponsesOff (the zero value),
	// ResponsesOn, or ResponsesProbe (on until the upstream answers 404,
	// 405 or 501 there).
	Responses ResponsesSupport
}

// ResponsesSupport is Options.Responses.
type ResponsesSupport int

// Values of ResponsesSupport.
const (
	ResponsesOff ResponsesSupport = iota
	ResponsesOn
	ResponsesProbe
)

// Client speaks the OpenAI API to one upstream. It is safe for concurrent use.
type Client struct {
	*upstream.Client
	o    Options
	base string
	auth string
	// noResponses is set when a probing client learned that the upstream
	// has no /responses; hasResponses when it saw it answer there, after
	// which it stops probing.
	noResponses, hasResponses atomic.Bool
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client with its own keep-alive connection pool.
func New(o Options) *Client {
	c := &Client{Client: upstream.New(o.Options), o: o, base: strings.TrimRight(o.BaseURL, "/")}
	if o.APIKey != "" {
		c.auth = "Bearer " + o.APIKey
	}
	return c
}

// Do sends a non-streaming request.
func (c *Client) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	if c.isNative(req) {
		return c.doNative(ctx, req)
	}
	body, err := c.body(req, false)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()
	data, err := c.Post(a, func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body) }, c.statusError)
	if err != nil {
		return nil, err
	}
	if !gjson.ValidBytes(data) {
		return nil, c.BadResponse(nil, "sent a response that is not JSON")
	}
	return &providers.Response{Body: data, Usage: ParseUsage(gjson.GetBytes(data, "usage"))}, nil
}

// Stream starts a streaming request.
func (c *Client) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	if c.isNative(req) {
		return c.streamNative(ctx, req)
	}
	body, err := c.body(req, true)
	if err != nil {
		return nil, err
	}
	a, rc, err := c.OpenStream(ctx, "text/event-stream", func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body) }, c.statusError)
	if err != nil {
		return nil, err
	}
	return c.newStream(a, rc), nil
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
	path := req.Operation.Path()
	if c.o.Path != nil {
		path = c.o.Path(req.Operation, req.Model)
	}
	return c.sendTo(ctx, path, req, body)
}

// sendTo posts body to path below the base URL.
func (c *Client) sendTo(ctx context.Context, path string, req *providers.Request, body []byte) (*http.Response, error) {
	url := c.base + path
	if c.o.Query != "" {
		url += "?" + c.o.Query
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := hreq.Header
	for k, v := range c.o.Header {
		h[k] = v
	}
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
	return c.HTTP.Do(hreq)
}

// statusError maps an upstream error response.
func (c *Client) statusError(resp *http.Response) error {
	return c.classify(resp.StatusCode, resp.Header.Get("Retry-After"), upstream.ReadError(resp))
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

// classify maps an OpenAI-format error body (upstream.Classify).
func (c *Client) classify(status int, retryAfter string, data []byte) *providers.Error {
	msg, typ, code, param := parseError(data)
	return c.Classify(status, retryAfter, upstream.ErrorBody{Message: msg, Type: typ, Code: code, Param: param})
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

// stream relays chat chunks as they came. Every OpenAI-compatible server
// ends with [DONE]; an end without it is a stream cut short.
type stream struct {
	*upstream.Events
	c *Client
}

func (c *Client) newStream(a *upstream.Attempt, body io.ReadCloser) *stream {
	return &stream{Events: c.Events(a, body, "ended the stream without [DONE]"), c: c}
}

func (s *stream) Recv() (providers.Event, error) {
	for {
		ev, err := s.Next()
		if err != nil {
			return providers.Event{}, err
		}
		if len(ev.Data) == 0 {
			continue
		}
		if bytes.Equal(ev.Data, []byte("[DONE]")) {
			s.Finish()
			continue
		}
		if ev.Name == "error" || bytes.Contains(ev.Data, []byte(`"error"`)) && gjson.GetBytes(ev.Data, "error").Exists() {
			return providers.Event{}, s.Fail(s.c.eventError(ev.Data))
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
