// Package gemini is the provider for Google's Gemini API
// (generativelanguage.googleapis.com). It translates the client's OpenAI
// chat completion and embeddings requests into generateContent,
// streamGenerateContent and embedContent / batchEmbedContents calls, and
// the answers back into OpenAI responses and chunks, so the gateway stays a
// drop-in OpenAI base URL.
//
// Text completions are not served: the Gemini API has no such operation.
// The chat completion id is Gemini's responseId prefixed with "chatcmpl-",
// created is the time the answer arrived, and model is the modelVersion
// Gemini reports. Gemini gives function calls no ids; they are numbered
// call_0, call_1... within each response, and a tool message is matched
// to its call by the id the client echoes back.
//
// Wire formats follow https://ai.google.dev/api/generate-content and
// https://ai.google.dev/api/embeddings; testdata/SOURCES.md lists the page
// behind each golden fixture.
package gemini

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/sse"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// DefaultBaseURL is the Gemini API root.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Options configure a Client.
type Options struct {
	upstream.Options
	// BaseURL is the API root, up to and including the version; empty
	// means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as the x-goog-api-key header, never in the URL, so it
	// cannot leak into access logs. Empty sends none.
	APIKey string
}

// Client speaks the Gemini API to one upstream. It is safe for concurrent
// use.
type Client struct {
	*upstream.Client
	o    Options
	base string
	// now stamps responses; tests fix it.
	now func() time.Time
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client with its own keep-alive connection pool.
func New(o Options) *Client {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	return &Client{Client: upstream.New(o.Options), o: o, base: strings.TrimRight(o.BaseURL, "/"), now: time.Now}
}

// Do sends a non-streaming request: a chat completion or embeddings.
func (c *Client) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	switch req.Operation {
	case providers.OpChat:
	case providers.OpEmbeddings:
		return c.embed(ctx, req)
	default:
		return nil, unsupported(req.Operation)
	}
	body, err := chatBody(req.Body)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()

	data, err := c.post(a, req, c.modelURL(req.Model, "generateContent"), body)
	if err != nil {
		return nil, err
	}
	r, err := c.parseResponse(data, req)
	if err != nil {
		return nil, err
	}
	return r.ProviderResponse(), nil
}

// Stream starts a streaming chat completion.
func (c *Client) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	if req.Operation != providers.OpChat {
		return nil, unsupported(req.Operation)
	}
	body, err := chatBody(req.Body)
	if err != nil {
		return nil, err
	}
	url := c.modelURL(req.Model, "streamGenerateContent") + "?alt=sse"
	a, rc, err := c.OpenStream(ctx, "text/event-stream", func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, url, body, true) }, c.statusError)
	if err != nil {
		return nil, err
	}
	return c.newStream(a, rc, req), nil
}

// unsupported refuses an operation the Gemini API does not have.
func unsupported(op providers.Operation) *providers.Error {
	return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_operation",
		Message: "the Gemini API serves chat completions and embeddings only, not " + string(op)}
}

// chatBody translates the client's chat request into a generateContent
// body.
func chatBody(body []byte) ([]byte, error) {
	r, err := chatwire.ParseRequest(body)
	if err != nil {
		return nil, err
	}
	return buildRequest(r)
}

// modelURL is the URL of a model's method: {base}/models/{model}:{method}.
// A model already named with its collection (models/x, tunedModels/x) keeps
// it.
func (c *Client) modelURL(model, method string) string {
	return c.base + "/" + modelPath(model) + ":" + method
}

// modelPath is the model's resource name, each segment escaped.
func modelPath(model string) string {
	if !strings.Contains(model, "/") {
		model = "models/" + model
	}
	segs := strings.Split(model, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// post sends a non-streaming call under the attempt and reads the answer.
func (c *Client) post(a *upstream.Attempt, req *providers.Request, url string, body []byte) ([]byte, error) {
	return c.Post(a, func(ctx context.Context) (*http.Response, error) { return c.send(ctx, req, url, body, false) }, c.statusError)
}

func (c *Client) send(ctx context.Context, req *providers.Request, url string, body []byte, stream bool) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
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
		h.Set("X-Goog-Api-Key", c.o.APIKey)
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
	return c.HTTP.Do(hreq)
}

// completionID is the chat completion id: Gemini's responseId, else the
// gateway's request id, else a random one.
func completionID(responseID string, req *providers.Request) string {
	switch {
	case responseID != "":
		return "chatcmpl-" + responseID
	case req.RequestID != "":
		return "chatcmpl-" + req.RequestID
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// newStream decodes an event stream body.
func (c *Client) newStream(a *upstream.Attempt, body io.ReadCloser, req *providers.Request) *stream {
	return &stream{c: c, a: a, body: body, r: sse.NewReader(body), req: req,
		w: chatwire.StreamWriter{Model: req.Model, Created: c.now().Unix()}}
}
