// Package anthropic is the provider for Anthropic's Messages API
// (POST {base}/v1/messages). It translates the client's OpenAI chat
// completion request into a Messages API request, and the message or its
// event stream back into an OpenAI chat completion or chunks, so the
// gateway stays a drop-in OpenAI base URL.
//
// Chat is the only operation: Anthropic has no completions or embeddings
// endpoint. The chat completion id is the Anthropic message id prefixed
// with "chatcmpl-", created is the time the answer arrived, and model is
// the model Anthropic reports.
//
// A request that carries the client's own Messages request
// (providers.Request.Native in providers.FormatAnthropicMessages) is sent
// as it is instead, with only the model and stream members rewritten, and
// answered as Anthropic's JSON and events (see native.go).
package anthropic

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Defaults for Options.
const (
	DefaultBaseURL   = "https://api.anthropic.com"
	DefaultVersion   = "2023-06-01"
	DefaultMaxTokens = 4096
)

// Options configure a Client.
type Options struct {
	upstream.Options
	// BaseURL is the API root; requests go to BaseURL + "/v1/messages".
	// Empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as x-api-key; empty sends none.
	APIKey string
	// Version is the anthropic-version header; empty means DefaultVersion.
	Version string
	// Beta lists anthropic-beta header values, sent comma-joined; a native
	// request adds the client's own (see native.go).
	Beta []string
	// DefaultMaxTokens is max_tokens when the client sent none, which the
	// Messages API requires. Zero means DefaultMaxTokens.
	DefaultMaxTokens int
}

// Client speaks the Messages API to one upstream. It is safe for
// concurrent use.
type Client struct {
	*upstream.Client
	o   Options
	url string
	// now stamps responses; tests fix it.
	now func() time.Time
}

var (
	_ providers.Provider      = (*Client)(nil)
	_ providers.NativeSpeaker = (*Client)(nil)
)

// New returns a Client with its own keep-alive connection pool.
func New(o Options) *Client {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	return &Client{Client: upstream.New(o.Options), o: o, url: strings.TrimRight(o.BaseURL, "/") + "/v1/messages", now: time.Now}
}

// Do sends a non-streaming request: the client's own Messages request
// when it has one (see native.go), else the translated chat request.
func (c *Client) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	if isNative(req) {
		return c.doNative(ctx, req)
	}
	body, err := c.body(req, false)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()
	beta := strings.Join(c.o.Beta, ",")
	data, err := c.Post(a, func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body, beta, false) }, c.statusError)
	if err != nil {
		return nil, err
	}
	r, err := parseResponse(data, c.now().Unix())
	if err != nil {
		return nil, c.BadResponse(err, "sent a response that is not a Messages API message")
	}
	return r.ProviderResponse(), nil
}

// Stream starts a streaming request: the client's own Messages request
// when it has one (see native.go), else the translated chat request.
func (c *Client) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	if isNative(req) {
		return c.streamNative(ctx, req)
	}
	body, err := c.body(req, true)
	if err != nil {
		return nil, err
	}
	beta := strings.Join(c.o.Beta, ",")
	a, rc, err := c.OpenStream(ctx, "text/event-stream", func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, body, beta, true) }, c.statusError)
	if err != nil {
		return nil, err
	}
	return c.newStream(a, rc), nil
}

// body translates the client's chat request into a Messages API body.
func (c *Client) body(req *providers.Request, stream bool) ([]byte, error) {
	if req.Operation != providers.OpChat {
		return nil, &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_operation",
			Message: "Anthropic serves chat completions only, not " + string(req.Operation)}
	}
	r, err := chatwire.ParseRequest(req.Body)
	if err != nil {
		return nil, err
	}
	return buildRequest(r, req.Model, c.o.DefaultMaxTokens, stream)
}

// send posts body with the backend's headers; beta is the anthropic-beta
// value, empty for none.
func (c *Client) send(ctx context.Context, req *providers.Request, body []byte, beta string, stream bool) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if c.o.APIKey != "" {
		h.Set("X-Api-Key", c.o.APIKey)
	}
	h.Set("Anthropic-Version", c.o.Version)
	if beta != "" {
		h.Set("Anthropic-Beta", beta)
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
	return c.HTTP.Do(hreq)
}

// newStream decodes an event stream body.
func (c *Client) newStream(a *upstream.Attempt, body io.ReadCloser) *stream {
	return &stream{Events: c.Events(a, body, cutShort), c: c, blocks: map[int]*toolBlock{}}
}
