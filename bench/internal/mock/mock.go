// Package mock implements a zero-delay, OpenAI-compatible chat completions
// upstream used by the load benchmark. It answers instantly with canned
// content so that whatever latency a benchmark observes is spent in the
// client, the network stack and (when measuring through it) the gateway.
//
// Served routes:
//
//	POST /v1/chat/completions (also /chat/completions)
//	    "stream" false or absent: one ~600-byte chat.completion JSON object.
//	    "stream": true: text/event-stream with 20 chat.completion.chunk
//	    events, each flushed on its own (first carries the assistant role,
//	    then one word of content each, the last carries finish_reason
//	    "stop"), then a usage-only chunk when
//	    stream_options.include_usage is true, then "data: [DONE]".
//	GET /v1/models     a one-entry model list (bench-model).
//	GET /healthz       "ok".
//
// The request body is parsed minimally with gjson (model, stream,
// stream_options.include_usage); the model is echoed back verbatim.
package mock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// maxRequestBody bounds how much of a request body the mock reads.
const maxRequestBody = 1 << 20

// content is the canned assistant reply: 40 words.
const content = "Hello! I am a mock assistant used for load testing the gateway. " +
	"This reply is static, arrives instantly and is forty words long so that " +
	"response sizes resemble a short real completion without any model " +
	"inference delay at all, honestly."

// streamEvents is the number of chat.completion.chunk events in a stream
// (role chunk + content words + finish chunk), not counting the optional
// usage chunk and the [DONE] sentinel.
const streamEvents = 20

// usageJSON is the usage object reported for every completion.
const usageJSON = `{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52,` +
	`"prompt_tokens_details":{"cached_tokens":0}}`

var (
	// streamWordsJSON are the content deltas of a stream as JSON strings:
	// the first streamEvents-2 words of content, each after the first with
	// its leading space.
	streamWordsJSON = func() []string {
		words := strings.Fields(content)[:streamEvents-2]
		for i := range words {
			if i > 0 {
				words[i] = " " + words[i]
			}
			words[i] = strconv.Quote(words[i])
		}
		return words
	}()
	contentJSON = strconv.Quote(content) // content has only ASCII, so Go quoting is valid JSON

	hdrJSON        = []string{"application/json"}
	hdrEventStream = []string{"text/event-stream"}
	hdrNoCache     = []string{"no-cache"}
)

// Handler is the mock upstream's http.Handler. Its zero value is not usable;
// create one with NewHandler.
type Handler struct {
	seq  atomic.Uint64 // completion id counter
	bufs sync.Pool     // *bytes.Buffer for request bodies and responses
}

// NewHandler returns a ready-to-serve mock handler.
func NewHandler() *Handler {
	return &Handler{bufs: sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}}
}

// ServeHTTP routes requests; see the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions", "/chat/completions":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h.chatCompletions(w, r)
	case "/v1/models", "/models":
		w.Header()["Content-Type"] = hdrJSON
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"bench-model","object":"model","created":1700000000,"owned_by":"mock"}]}`)
	case "/healthz":
		_, _ = io.WriteString(w, "ok")
	case "/v1/traces":
		// An OTLP/HTTP sink: the load benchmark points the gateway's trace
		// exporter here to measure tracing's cost; the spans are dropped.
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	default:
		writeError(w, http.StatusNotFound, "not found")
	}
}

func (h *Handler) chatCompletions(w http.ResponseWriter, r *http.Request) {
	in := h.bufs.Get().(*bytes.Buffer)
	out := h.bufs.Get().(*bytes.Buffer)
	defer func() {
		in.Reset()
		out.Reset()
		h.bufs.Put(in)
		h.bufs.Put(out)
	}()

	if _, err := in.ReadFrom(http.MaxBytesReader(w, r.Body, maxRequestBody)); err != nil {
		writeError(w, http.StatusBadRequest, "cannot read request body")
		return
	}
	body := in.Bytes()
	if !gjson.ValidBytes(body) {
		writeError(w, http.StatusBadRequest, "request body is not valid JSON")
		return
	}

	model := `"unknown"`
	if m := gjson.GetBytes(body, "model"); m.Type == gjson.String {
		model = m.Raw // already a valid JSON string literal
	}
	id := h.seq.Add(1)
	created := time.Now().Unix()

	if !gjson.GetBytes(body, "stream").Bool() {
		appendCompletion(out, id, created, model)
		hdr := w.Header()
		hdr["Content-Type"] = hdrJSON
		hdr["Content-Length"] = []string{strconv.Itoa(out.Len())}
		_, _ = w.Write(out.Bytes())
		return
	}

	includeUsage := gjson.GetBytes(body, "stream_options.include_usage").Bool()
	flusher, _ := w.(http.Flusher)
	hdr := w.Header()
	hdr["Content-Type"] = hdrEventStream
	hdr["Cache-Control"] = hdrNoCache
	w.WriteHeader(http.StatusOK)

	send := func() bool {
		if _, err := w.Write(out.Bytes()); err != nil {
			return false
		}
		out.Reset()
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for i := 0; i < streamEvents; i++ {
		appendChunk(out, id, created, model, i)
		if !send() {
			return
		}
	}
	if includeUsage {
		appendChunkPrefix(out, id, created, model)
		out.WriteString(`"choices":[],"usage":`)
		out.WriteString(usageJSON)
		out.WriteString("}\n\n")
		if !send() {
			return
		}
	}
	out.WriteString("data: [DONE]\n\n")
	send()
}

// appendCompletion writes a complete chat.completion object.
func appendCompletion(b *bytes.Buffer, id uint64, created int64, model string) {
	b.WriteString(`{"id":"chatcmpl-mock`)
	writeUint(b, id)
	b.WriteString(`","object":"chat.completion","created":`)
	writeInt(b, created)
	b.WriteString(`,"model":`)
	b.WriteString(model)
	b.WriteString(`,"choices":[{"index":0,"message":{"role":"assistant","content":`)
	b.WriteString(contentJSON)
	b.WriteString(`},"logprobs":null,"finish_reason":"stop"}],"usage":`)
	b.WriteString(usageJSON)
	b.WriteString(`,"system_fingerprint":"fp_mock"}`)
}

// appendChunkPrefix writes `data: {` and the fields common to every chunk,
// leaving the object open after a trailing comma.
func appendChunkPrefix(b *bytes.Buffer, id uint64, created int64, model string) {
	b.WriteString(`data: {"id":"chatcmpl-mock`)
	writeUint(b, id)
	b.WriteString(`","object":"chat.completion.chunk","created":`)
	writeInt(b, created)
	b.WriteString(`,"model":`)
	b.WriteString(model)
	b.WriteString(`,"system_fingerprint":"fp_mock",`)
}

// appendChunk writes SSE event i (0-based) of a stream.
func appendChunk(b *bytes.Buffer, id uint64, created int64, model string, i int) {
	appendChunkPrefix(b, id, created, model)
	switch {
	case i == 0:
		b.WriteString(`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`)
	case i == streamEvents-1:
		b.WriteString(`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`)
	default:
		b.WriteString(`"choices":[{"index":0,"delta":{"content":`)
		b.WriteString(streamWordsJSON[i-1])
		b.WriteString(`},"logprobs":null,"finish_reason":null}]}`)
	}
	b.WriteString("\n\n")
}

func writeUint(b *bytes.Buffer, v uint64) {
	var tmp [20]byte
	b.Write(strconv.AppendUint(tmp[:0], v, 10))
}

func writeInt(b *bytes.Buffer, v int64) {
	var tmp [20]byte
	b.Write(strconv.AppendInt(tmp[:0], v, 10))
}

// writeError replies with an OpenAI-style error object.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error","code":null}}`, msg)
}

// NewServer returns an http.Server serving h, tuned for benchmarking:
// no request logging, server errors discarded, generous keep-alive.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
}

// Server is a running mock upstream.
type Server struct {
	// Addr is the address actually listened on, e.g. "127.0.0.1:41234".
	Addr string

	srv  *http.Server
	done chan error
}

// Start listens on addr, which must be a loopback address (port 0 picks a
// free port), and serves the mock in a background goroutine.
func Start(addr string) (*Server, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), srv: NewServer(NewHandler()), done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close gracefully shuts the server down, waiting at most timeout for
// in-flight requests, then closes whatever is left.
func (s *Server) Close(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && serr != http.ErrServerClosed && err == nil {
		err = serr
	}
	return err
}

// CheckLoopback returns an error unless hostport names a loopback host
// ("localhost" or a loopback IP literal).
func CheckLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("address %q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not a loopback address; only 127.0.0.0/8, ::1 and localhost are allowed", hostport)
}
