package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// Streams
//
// The router opens the upstream stream and waits for its first event
// before anything is sent to the client, so a failure up to that point
// still falls back to the next deployment and is answered as a plain JSON
// error. After that the response is committed: events are relayed one by
// one, each flushed at once, and an upstream failure becomes an OpenAI
// error event ({"error":{...}}) that ends the stream.
//
// Where the request went is in the response headers (X-Switchyard-Backend,
// -Backend-Kind, -Model, -Attempts), as for JSON. What it cost is known only
// at the end, so it is sent as an SSE comment just before "data: [DONE]":
//
//	: x-switchyard-cost {"backend":"openai","model":"gpt-4o-mini","cost_usd":"0.000045","prompt_tokens":12,"completion_tokens":40,"cached_tokens":0,"usage_estimated":false}
//
// SSE clients, the OpenAI SDKs included, ignore comment lines.
//
// The gateway always asks the upstream for usage in the final chunk. When
// the client did not ask for it, that usage-only chunk is dropped; when the
// client asked and the upstream sent none, the gateway sends one with
// estimated counts. While the upstream is silent the gateway writes a
// ": keep-alive" comment every server.stream_keepalive; a write that fails
// means the client went away, and the upstream request is canceled at once.

var (
	sseData      = []byte("data: ")
	sseEnd       = []byte("\n\n")
	sseDone      = []byte("data: [DONE]\n\n")
	sseKeepalive = []byte(": keep-alive\n\n")
	sseCost      = []byte(": x-switchyard-cost ")
)

// stream serves a streaming request, and stores the answer when the cache
// outcome says so and the stream ends cleanly.
func (s *Server) stream(c *fiber.Ctx, call *call, req *providers.Request, rec *record, cached cacheOutcome) error {
	ctx, cancel := s.upstreamContext(rec)
	conn := c.Context().Conn()
	stop := watchClient(conn, s.cfg.Server.StreamKeepalive, cancel)
	s.waiting(rec)
	res, err := s.router.Stream(ctx, call.route, req)
	stop()
	attempted(c, rec, res.Attempts)
	if err != nil {
		cancel(nil)
		return err
	}
	var record *cacheRecorder
	if cached.store {
		p, _ := c.Locals(localPrincipal).(*Principal)
		record = &cacheRecorder{outcome: cached, p: p, call: call, limit: int(s.cfg.Cache.MaxEntryBytes)}
	}
	return s.relayStream(c, call, rec, res.Deployment, res.Stream, func() { cancel(nil) }, record)
}

// relayStream answers with a stream: the upstream's (d's), or a stored
// answer replayed (d nil's Provider, no health to report). cancel ends
// the upstream request; record, if not nil, keeps the answer for the
// cache.
func (s *Server) relayStream(c *fiber.Ctx, call *call, rec *record, d *router.Deployment, st providers.Stream, cancel func(), record *cacheRecorder) error {
	conn := c.Context().Conn()
	if !s.streamStarted() {
		st.Close()
		cancel()
		return ErrShuttingDown
	}
	rec.principal, _ = c.Locals(localPrincipal).(*Principal)
	rec.status = fiber.StatusOK
	c.Locals(localStreaming, true)

	setBackendHeaders(c, d)
	if speaksNative(call, d.Provider) {
		c.Response().Header.Del(HeaderDropped) // the backend gets the client's own request
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Status(fiber.StatusOK)

	r := &relay{
		s: s, call: call, d: d, stream: st, cancel: cancel, rec: rec, conn: conn,
		promptTokens: call.promptTokensFor(d), record: record, replay: d.Provider == nil,
	}
	if call.ingress != nil {
		r.format = call.ingress.events(r.promptTokens)
	}
	call.body = nil                        // Fiber's buffer; the relay outlives the handler
	c.Context().SetBodyStreamWriter(r.run) // fasthttp starts it at once, on its own goroutine
	return nil
}

// relay copies one upstream stream to the client. It runs on fasthttp's
// stream-writer goroutine, after the handler returned: it must not touch
// the Fiber context.
type relay struct {
	s      *Server
	call   *call
	d      *router.Deployment
	stream providers.Stream
	cancel context.CancelFunc
	rec    *record
	conn   net.Conn // the client's, for write deadlines

	w              *bufio.Writer
	mu             sync.Mutex // guards w, done and the keep-alive timer's setup
	done           bool
	gone           atomic.Bool // a keep-alive write failed: the client left
	keepalive      *time.Timer
	keepaliveEvery time.Duration

	format       streamFormat   // the client's format; nil relays OpenAI chunks as they are
	started      bool           // format.start was written
	broken       error          // format.chunk failed: the stream ends with an error
	native       bool           // the backend answered in the client's format
	record       *cacheRecorder // keeps the answer for the response cache; nil when not stored
	replay       bool           // a stored answer: no deployment's health to report
	usage        *providers.Usage
	promptTokens int64  // as d counts them, for usage the upstream does not report
	chunks       int    // events relayed, the estimate of completion tokens
	id, model    string // from the first chunk, for a synthesised usage chunk
	created      int64
}

// run relays events until the stream ends or the client leaves. Reading
// and writing happen on this goroutine; a timer writes keep-alives when the
// upstream has been silent for server.stream_keepalive. The two share the
// writer under mu.
func (r *relay) run(w *bufio.Writer) {
	r.mu.Lock()
	r.w = w
	r.keepaliveEvery = r.s.cfg.Server.StreamKeepalive
	r.keepalive = time.AfterFunc(r.keepaliveEvery, r.sendKeepalive)
	r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			r.s.log.Error("panic in stream relay", "request_id", r.rec.requestID, "panic", p, "stack", string(debug.Stack()))
			r.settle()
			r.rec.status = fiber.StatusInternalServerError
			r.rec.err = toAPIError(fmt.Errorf("panic in stream relay: %v", p))
		}
		r.mu.Lock()
		r.done = true // w belongs to fasthttp again once run returns
		r.mu.Unlock()
		r.keepalive.Stop()
		r.stream.Close()
		r.cancel()
		r.finish()
	}()
	for {
		ev, err := r.stream.Recv()
		if r.gone.Load() {
			r.clientGone()
			return
		}
		if err != nil {
			r.withWriter(func() error { r.end(err); return nil })
			return
		}
		if err := r.withWriter(func() error { return r.forward(ev) }); err != nil {
			r.clientGone()
			return
		}
		if r.broken != nil {
			r.withWriter(func() error { r.end(r.broken); return nil })
			return
		}
		r.keepalive.Reset(r.keepaliveEvery)
	}
}

// withWriter runs f holding mu, released even if f panics.
func (r *relay) withWriter(f func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f()
}

// sendKeepalive runs on the timer's goroutine. A failed write means the
// client went away: closing the stream cancels the upstream request and
// unblocks run's Recv.
func (r *relay) sendKeepalive() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.w.Write(sseKeepalive)
	setWriteDeadline(r.conn, r.s.cfg.Server.WriteTimeout)
	if err := r.w.Flush(); err != nil {
		r.gone.Store(true)
		r.stream.Close()
		return
	}
	r.keepalive.Reset(r.keepaliveEvery)
}

// forward writes one event unless it is the usage-only chunk the client did
// not ask for.
func (r *relay) forward(ev providers.Event) error {
	w := r.w
	if ev.Usage != nil {
		r.usage = ev.Usage
	}
	if r.id == "" {
		r.id = gjson.GetBytes(ev.Data, "id").Str
		r.model = gjson.GetBytes(ev.Data, "model").Str
		if ev.Native { // Anthropic's message_start, or the Responses API's response.created
			head := gjson.GetBytes(ev.Data, "message")
			if !head.Exists() {
				head = gjson.GetBytes(ev.Data, "response")
			}
			r.id, r.model = head.Get("id").Str, head.Get("model").Str
		}
		r.created = gjson.GetBytes(ev.Data, "created").Int()
		r.rec.respID, r.rec.respModel = r.id, r.model
		r.rec.ttfc = time.Since(r.rec.start)
	}
	if !ev.Native {
		r.record.add(ev.Data)
	}
	if !ev.UsageOnly {
		r.chunks++
		r.rec.chunks = r.chunks
		if f := gjson.GetBytes(ev.Data, "choices.0.finish_reason"); f.Type == gjson.String && f.Str != "" {
			r.rec.finish = append(r.rec.finish, f.Str)
		}
		if ev.Native {
			if f := nativeFinish(ev.Data); f != "" {
				r.rec.finish = append(r.rec.finish, f)
			}
		}
	}
	if ev.Native {
		// The backend speaks the client's format: its events go as they
		// are (event name from the data's type), start and end included.
		r.native, r.started = true, true
		data := ev.Data
		if r.format != nil {
			out, err := r.format.native(data)
			if err != nil {
				r.broken = fmt.Errorf("reading the upstream's stream: %w", err)
				return nil
			}
			data = out
		}
		w.WriteString("event: ")
		w.WriteString(gjson.GetBytes(data, "type").Str)
		w.WriteString("\n")
		w.Write(sseData)
		w.Write(data)
		w.Write(sseEnd)
	} else if r.format != nil {
		if !r.started {
			r.started = true
			w.Write(r.format.start())
		}
		out, err := r.format.chunk(ev.Data, ev.Usage)
		w.Write(out) // what was translated before a failure still goes out
		if err != nil {
			r.broken = fmt.Errorf("translating the upstream's stream: %w", err)
		}
	} else {
		if ev.UsageOnly && !r.call.includeUsage {
			return nil
		}
		w.Write(sseData)
		w.Write(ev.Data)
		w.Write(sseEnd)
	}
	setWriteDeadline(r.conn, r.s.cfg.Server.WriteTimeout)
	return w.Flush()
}

// end finishes the stream: on a clean end with the usage chunk if owed, the
// cost comment and [DONE]; on a failure with an error event (OpenAI's
// shape, which SDKs raise) and the cost comment.
func (r *relay) end(err error) {
	w := r.w
	r.settle()
	if r.format != nil && !r.started {
		r.started = true
		w.Write(r.format.start())
	}
	if !errors.Is(err, io.EOF) {
		e := toAPIError(err)
		r.rec.err = e
		r.rec.status = e.Status
		if !r.replay {
			r.s.router.Report(r.d, err)
		}
		if r.format != nil {
			w.Write(r.format.fail(e))
		} else {
			w.Write(sseData)
			w.Write(marshalError(e))
			w.Write(sseEnd)
		}
	} else {
		if !r.replay {
			r.s.router.Report(r.d, nil) // a clean end: the deployment is healthy
		}
		r.record.done(r.s, r.d, r.rec.usage, r.rec.cost)
		if r.format != nil && !r.native {
			w.Write(r.format.end(r.rec.usage))
		}
	}
	// The estimate stands in for the usage chunk an upstream did not
	// send; a replayed answer carries its own (estimated or not).
	if r.format == nil && errors.Is(err, io.EOF) && r.rec.usage.Estimated && r.call.includeUsage && !r.replay {
		w.Write(sseData)
		w.Write(r.usageChunk())
		w.Write(sseEnd)
	}
	// What was used is billed and reported whichever way the stream ended.
	w.Write(sseCost)
	w.Write(r.costComment())
	w.Write(sseEnd)
	if r.format == nil && errors.Is(err, io.EOF) {
		w.Write(sseDone)
	}
	setWriteDeadline(r.conn, r.s.cfg.Server.WriteTimeout)
	if err := w.Flush(); err != nil {
		r.rec.status = statusClientClosed // the end never reached the client
	}
}

func (r *relay) clientGone() {
	r.settle()
	r.rec.status = statusClientClosed
	r.rec.err = toAPIError(context.Canceled)
}

// settle fixes the usage and cost of the stream, estimating usage the
// upstream did not report: prompt tokens as the deployment counts them, one
// completion token per streamed chunk, which is how OpenAI-compatible
// servers stream.
func (r *relay) settle() {
	if r.rec.usage != nil {
		return // settled already: a stream is billed once
	}
	u := r.usage
	if u == nil {
		u = &providers.Usage{
			PromptTokens:     r.promptTokens,
			CompletionTokens: int64(r.chunks),
			Estimated:        true,
		}
	}
	r.rec.usage = u
	r.rec.cost = r.d.Price.Cost(billed(u))
}

func (r *relay) finish() { r.s.emit(r.rec) }

type costComment struct {
	Backend          string `json:"backend"`
	Model            string `json:"model"`
	CostUSD          string `json:"cost_usd"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens,omitempty"`
	Estimated        bool   `json:"usage_estimated"`
}

func (r *relay) costComment() []byte {
	u := r.rec.usage
	b, _ := json.Marshal(costComment{
		Backend: r.d.Backend, Model: r.d.Model, CostUSD: r.rec.cost.String(),
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, CachedTokens: u.CachedTokens,
		CacheWriteTokens: u.CacheWriteTokens, Estimated: u.Estimated,
	})
	return b
}

// usageChunk is the final chunk OpenAI sends for include_usage, made up
// from estimated counts.
func (r *relay) usageChunk() []byte {
	u := r.rec.usage
	object := "chat.completion.chunk"
	if r.call.op == providers.OpCompletion {
		object = "text_completion"
	}
	type usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	}
	b, _ := json.Marshal(struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []any  `json:"choices"`
		Usage   usage  `json:"usage"`
	}{r.id, object, r.created, r.model, []any{}, usage{u.PromptTokens, u.CompletionTokens, u.PromptTokens + u.CompletionTokens}})
	return b
}
