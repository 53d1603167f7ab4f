// Package providers defines how the gateway talks to a backend, whatever
// its wire protocol: the request and response types, the Provider
// interface, and the upstream error.
//
// The lingua franca is OpenAI's wire format. A request carries the client's
// JSON body untouched; a provider for an OpenAI-compatible upstream forwards
// it with the model rewritten, and a translating provider (Anthropic,
// Gemini) converts it. Responses come back as OpenAI JSON, so the gateway
// relays bytes and never re-encodes a response.
package providers

import (
	"context"
)

// Operation is the API operation a request invokes.
type Operation string

// Operations.
const (
	OpChat       Operation = "chat"            // POST /v1/chat/completions
	OpCompletion Operation = "text_completion" // POST /v1/completions
	OpEmbeddings Operation = "embeddings"      // POST /v1/embeddings
)

// Path is the operation's path below an OpenAI-style base URL.
func (o Operation) Path() string {
	switch o {
	case OpCompletion:
		return "/completions"
	case OpEmbeddings:
		return "/embeddings"
	default:
		return "/chat/completions"
	}
}

// Request is one upstream call.
type Request struct {
	Operation Operation
	// Model is the upstream model name; the provider writes it into the body.
	Model string
	// Body is the client's JSON request body, in OpenAI's format. Providers
	// must not modify it in place: the router reuses it for fallbacks.
	Body []byte
	// Stream is true for a streaming request.
	Stream bool
	// RequestID is the gateway's request id, forwarded upstream.
	RequestID string
	// Native, when set, is the client's own request in another API
	// format. A provider that speaks that format natively (NativeSpeaker)
	// sends it instead of translating Body, so nothing is lost in
	// translation, and answers in that format (Response.Native,
	// Event.Native). Others ignore it and translate Body. The gateway
	// sets it only when the policy's decision covered everything in it.
	Native *Native
}

// Native formats.
const (
	// FormatAnthropicMessages is Anthropic's Messages API (POST
	// /v1/messages).
	FormatAnthropicMessages = "anthropic.messages"
	// FormatOpenAIResponses is OpenAI's Responses API (POST
	// /v1/responses), sent stateless: the gateway inlines the
	// conversation a previous_response_id continues and asks the
	// upstream not to store it.
	FormatOpenAIResponses = "openai.responses"
)

// Native is a request in its client's own format.
type Native struct {
	// Format is the API format, e.g. FormatAnthropicMessages.
	Format string
	// Body is the client's JSON body. Providers must not modify it in
	// place, and must write the upstream model into what they send.
	Body []byte
	// Beta is the client's anthropic-beta header values, for an
	// Anthropic backend (added to the backend's configured ones).
	Beta []string
}

// NativeSpeaker is a Provider that sends some Native formats as they are.
type NativeSpeaker interface {
	SpeaksNative(format string) bool
}

// Usage is normalised token usage.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	// CachedTokens are the prompt tokens served from the provider's cache;
	// they are part of PromptTokens.
	CachedTokens int64
	// CacheWriteTokens are the prompt tokens written to the provider's
	// cache (Anthropic's cache creation); part of PromptTokens.
	CacheWriteTokens int64
	// Estimated is true when the upstream reported no usage and the gateway
	// estimated it.
	Estimated bool
}

// Response is a complete, non-streaming answer.
type Response struct {
	// Body is the OpenAI-format JSON response.
	Body []byte
	// Usage is parsed from Body; nil when the upstream reported none.
	Usage *Usage
	// Native is true when Body is in the request's Native format (the
	// provider sent the client's own request), not OpenAI's.
	Native bool
}

// Event is one streamed chunk.
type Event struct {
	// Data is the SSE data payload: one OpenAI chunk as JSON. It is valid
	// until the next Recv.
	Data []byte
	// Usage is set when the chunk carried a usage object.
	Usage *Usage
	// UsageOnly is true for the final chunk that carries usage and no
	// choices, the one stream_options.include_usage asks for.
	UsageOnly bool
	// Native is true when Data is one event of the request's Native
	// format (the data of one SSE event, whose "type" is its event name,
	// for Anthropic's Messages and OpenAI's Responses), not an OpenAI
	// chunk. Usage is still set from the
	// events that carry it (cumulatively: the latest is the total).
	Native bool
}

// Stream is an open streaming response.
type Stream interface {
	// Recv returns the next event, or io.EOF after the last one.
	Recv() (Event, error)
	// Close releases the stream and cancels the upstream request if it is
	// still running. It is safe to call more than once, and from another
	// goroutine while Recv blocks, which it then unblocks.
	Close() error
}

// Provider is one backend's wire protocol. Implementations are safe for
// concurrent use.
type Provider interface {
	// Do sends a non-streaming request.
	Do(ctx context.Context, req *Request) (*Response, error)
	// Stream starts a streaming request. Failures before the response
	// headers (connect, 429, 5xx, timeouts) are returned here; a failure
	// before the first event is returned by the first Recv. Either way the
	// router can still fall back, because nothing reached the client yet.
	Stream(ctx context.Context, req *Request) (Stream, error)
}
