package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// benchMaxTokens is max_tokens in the Messages request, which requires it.
// The chat and Responses requests set no limit, like the chat request always
// has; the mock answers 40 completion tokens whatever the limit, so 64 never
// cuts an answer short.
const benchMaxTokens = 64

// anthropicVersion is the anthropic-version header the Anthropic SDKs send.
const anthropicVersion = "2023-06-01"

// apiFormat is one request format the harness can send (-api): where it is
// posted below the base URL, the request, how the key is sent, and the byte
// strings whose presence in a 2xx body marks the answer complete and in that
// format.
type apiFormat struct {
	desc         string // for the report
	path         string // below the base URL, e.g. "/chat/completions"
	body         func(model string, stream bool) []byte
	auth         func(h http.Header, key string)
	jsonMarker   string // in a complete JSON answer
	streamMarker string // in a complete stream, in its last event
}

// apiFormats are the formats -api (and a -target's api=) accepts. The
// direct target (the bare mock) is always sent chat; -api selects what the
// targets are sent, unless a target names its own with api=.
var apiFormats = map[string]apiFormat{
	"chat": {
		desc: "OpenAI chat completions", path: "/chat/completions",
		body: requestBody, auth: bearer,
		jsonMarker: `"choices"`, streamMarker: "[DONE]",
	},
	"responses": {
		desc: "OpenAI Responses", path: "/responses",
		body: responsesBody, auth: bearer,
		// Output is an array; chat's answer has no "output" at all.
		jsonMarker: `"output":[`, streamMarker: "event: response.completed",
	},
	"messages": {
		desc: "Anthropic Messages", path: "/messages",
		body: messagesBody, auth: xAPIKey,
		// Content is an array of blocks, here a text block; in a chat answer
		// content is a string, in a Responses one an output_text block.
		jsonMarker: `"content":[{"type":"text"`, streamMarker: "event: message_stop",
	},
}

// apiNames lists the formats -api accepts, sorted.
func apiNames() []string { return slices.Sorted(maps.Keys(apiFormats)) }

// lookupAPI returns the format named name.
func lookupAPI(name string) (apiFormat, error) {
	f, ok := apiFormats[name]
	if !ok {
		return apiFormat{}, fmt.Errorf("-api: %q is not one of %s", name, strings.Join(apiNames(), ", "))
	}
	return f, nil
}

// spec returns the attack of mode ("json" or "stream") in format f, without
// its rate and duration.
func (f apiFormat) spec(mode, model, key string) attackSpec {
	stream := mode == "stream"
	header := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		f.auth(header, key)
	}
	marker := f.jsonMarker
	if stream {
		marker = f.streamMarker
	}
	return attackSpec{mode: mode, body: f.body(model, stream), header: header, marker: []byte(marker)}
}

// bearer sends the key as "Authorization: Bearer KEY".
func bearer(h http.Header, key string) { h.Set("Authorization", "Bearer "+key) }

// xAPIKey sends the key as Anthropic's SDKs do: x-api-key, with an
// anthropic-version.
func xAPIKey(h http.Header, key string) {
	h.Set("X-Api-Key", key)
	h.Set("Anthropic-Version", anthropicVersion)
}

// benchMessage is the one user message of every request.
type benchMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

var benchMessages = []benchMessage{{Role: "user", Content: "Say hello"}}

// requestBody returns the chat completion request: the direct target's in
// every run, and a target's with -api chat (or api=chat).
func requestBody(model string, stream bool) []byte {
	type streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	req := struct {
		Model         string         `json:"model"`
		Messages      []benchMessage `json:"messages"`
		Stream        bool           `json:"stream"`
		StreamOptions *streamOptions `json:"stream_options,omitempty"`
	}{
		Model:    model,
		Messages: benchMessages,
		Stream:   stream,
	}
	if stream {
		req.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	return mustJSON(req)
}

// responsesBody returns the same request in OpenAI's Responses format, with
// store false so that the gateway keeps nothing.
func responsesBody(model string, stream bool) []byte {
	return mustJSON(struct {
		Model  string         `json:"model"`
		Input  []benchMessage `json:"input"`
		Stream bool           `json:"stream"`
		Store  bool           `json:"store"`
	}{model, benchMessages, stream, false})
}

// messagesBody returns the same request in Anthropic's Messages format.
func messagesBody(model string, stream bool) []byte {
	return mustJSON(struct {
		Model     string         `json:"model"`
		MaxTokens int            `json:"max_tokens"`
		Messages  []benchMessage `json:"messages"`
		Stream    bool           `json:"stream"`
	}{model, benchMaxTokens, benchMessages, stream})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // cannot happen: only strings, numbers and bools
	}
	return b
}
