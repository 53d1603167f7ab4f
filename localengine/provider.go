package localengine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
)

// Provider serves OpenAI-format requests (chat completions, completions,
// embeddings; JSON and SSE) from the models of a Pool. It is the local
// engine's face to the router: a provider like the others.
type Provider struct {
	pool *Pool
	// now is the clock for "created"; nil means time.Now.
	now func() time.Time
	// autoGrammar, in tests, constrains tool_choice auto as well (to make
	// a random model call tools); nil in production.
	autoGrammar func(*toolSet) string
}

var _ providers.Provider = (*Provider)(nil)

// NewProvider serves the pool's models.
func NewProvider(pool *Pool) *Provider { return &Provider{pool: pool} }

func (p *Provider) created() int64 {
	if p.now != nil {
		return p.now().Unix()
	}
	return time.Now().Unix()
}

// call is a parsed request.
type call struct {
	op     providers.Operation
	model  *Model
	name   string
	gen    Request
	msgs   []Message // chat
	inputs []string  // embeddings
	base64 bool      // embeddings encoding_format
	id     string
	tools  *toolSet        // chat: offered tools, nil when none are
	format *responseFormat // response_format json_object or json_schema; nil for text
}

// wrongEndpoint is a request for model on the endpoint it does not serve,
// naming the one it does.
func wrongEndpoint(model string, embeddings bool) error {
	msg := fmt.Sprintf("local model %q is an embedding model: it serves only /v1/embeddings", model)
	if !embeddings {
		msg = fmt.Sprintf("local model %q generates text: it serves /v1/chat/completions, /v1/completions and /v1/responses, not /v1/embeddings (an embedding model has embeddings: true in local_engine.models)", model)
	}
	return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_operation", Param: "model", Message: msg, Err: ErrWrongKind}
}

func (p *Provider) parse(req *providers.Request) (*call, error) {
	m, err := p.pool.Model(req.Model)
	if err != nil {
		return nil, err
	}
	c := &call{op: req.Operation, model: m, name: req.Model, id: newID()}
	switch req.Operation {
	case providers.OpEmbeddings:
		if !m.Embeddings() {
			return nil, wrongEndpoint(req.Model, false)
		}
		var body embeddingsBody
		if err := decodeBody(req.Body, &body); err != nil {
			return nil, err
		}
		c.inputs, err = body.texts()
		if err != nil {
			return nil, err
		}
		switch body.EncodingFormat {
		case "", "float":
		case "base64":
			c.base64 = true
		default:
			return nil, invalid("encoding_format", "encoding_format must be float or base64")
		}
		if body.Dimensions != nil && *body.Dimensions != int(m.nEmbd) {
			return nil, invalid("dimensions", fmt.Sprintf("this model's embeddings have %d dimensions; it cannot shorten them", m.nEmbd))
		}
		return c, nil
	case providers.OpChat, providers.OpCompletion:
	default:
		return nil, invalid("", fmt.Sprintf("operation %s is not served by the local engine", req.Operation))
	}
	var body genBody
	if err := decodeBody(req.Body, &body); err != nil {
		return nil, err
	}
	if c.gen, err = body.request(req.Operation); err != nil {
		return nil, err
	}
	if m.Embeddings() {
		return nil, wrongEndpoint(req.Model, true)
	}
	if c.format, err = body.responseFormat(); err != nil {
		return nil, err
	}
	if req.Operation == providers.OpCompletion {
		if c.format != nil {
			c.gen.Grammar = formatGrammar(c.format, nil)
		}
		return c, nil
	}
	ts, err := body.toolSet()
	if err != nil {
		return nil, err
	}
	if c.msgs, err = body.chatMessages(ts); err != nil {
		return nil, err
	}
	if ts.active() {
		c.tools = ts
	}
	switch {
	case ts.constrained():
		// Only tool calls: response_format has no content to shape.
		c.gen.Grammar = toolGrammar(ts)
	case c.format != nil:
		c.gen.Grammar = formatGrammar(c.format, ts)
	case ts.active() && p.autoGrammar != nil:
		c.gen.Grammar = p.autoGrammar(ts)
	}
	return c, nil
}

// start queues the generation.
func (c *call) start(ctx context.Context) (*Generation, error) {
	var g *Generation
	var err error
	if c.op == providers.OpChat {
		g, err = c.model.Chat(ctx, c.msgs, c.gen)
	} else {
		g, err = c.model.Generate(ctx, c.gen)
	}
	if err != nil {
		if errors.Is(err, ErrGrammar) && c.format != nil && !c.tools.constrained() {
			// The converter's grammar of a checked schema; llama.cpp
			// refusing it is the schema's doing.
			param := paramFormat
			if c.format.schema != nil {
				param = paramSchema
			}
			return nil, &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Param: param,
				Message: "the local engine cannot follow this response_format: llama.cpp rejected the grammar made from it", Err: err}
		}
		return nil, engineError(err, c.param())
	}
	return g, nil
}

// param names the request field that holds the prompt.
func (c *call) param() string {
	switch c.op {
	case providers.OpCompletion:
		return "prompt"
	case providers.OpEmbeddings:
		return "input"
	}
	return "messages"
}

// Do answers a non-streaming request.
func (p *Provider) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	c, err := p.parse(req)
	if err != nil {
		return nil, err
	}
	if c.op == providers.OpEmbeddings {
		return p.embed(ctx, c)
	}
	g, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	var parser *callParser
	if c.tools != nil {
		parser = newCallParser(c.tools)
	}
	var text []byte
	var calls []toolCall
	add := func(evs []toolEvent) {
		for _, ev := range evs {
			if ev.Call == nil {
				text = append(text, ev.Text...)
				continue
			}
			calls = append(calls, toolCall{ID: newCallID(), Type: "function", Function: functionCall{Name: ev.Call.Name, Arguments: ev.Call.Arguments}})
		}
	}
	for {
		s, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, engineError(err, c.param())
		}
		if parser == nil {
			text = append(text, s...)
			continue
		}
		add(parser.push(s))
		// parallel_tool_calls false: the first call ends the answer. (A
		// grammar allows only the end of the turn after it, so the model
		// ends by itself, and the usage does not depend on when the reader
		// noticed the call.)
		if parser.done && !c.tools.constrained() {
			g.Stop()
		}
	}
	if parser != nil {
		add(parser.flush())
	}
	finish, u := g.Result()
	usage := usageJSON(u)
	var out any
	if c.op == providers.OpChat {
		msg := &chatMessage{Role: "assistant", ToolCalls: calls}
		if content := string(text); content != "" || len(calls) == 0 {
			msg.Content = &content
		}
		finish = finishReason(finish, len(calls))
		out = chatCompletion{ID: "chatcmpl-" + c.id, Object: "chat.completion", Created: p.created(), Model: c.name,
			Choices: []chatChoice{{Message: msg, FinishReason: &finish}},
			Usage:   &usage}
	} else {
		out = textCompletion{ID: "cmpl-" + c.id, Object: "text_completion", Created: p.created(), Model: c.name,
			Choices: []textChoice{{Text: string(text), FinishReason: &finish}}, Usage: &usage}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &providers.Response{Body: b, Usage: usage.normalised()}, nil
}

// finishReason is "tool_calls" when the model called tools and stopped by
// itself; a completion cut by max_tokens stays "length".
func finishReason(finish string, calls int) string {
	if calls > 0 && finish == FinishStop {
		return "tool_calls"
	}
	return finish
}

func (p *Provider) embed(ctx context.Context, c *call) (*providers.Response, error) {
	out := embeddingList{Object: "list", Model: c.name, Data: make([]embedding, len(c.inputs))}
	total := 0
	for i, text := range c.inputs {
		v, n, err := c.model.Embed(ctx, text)
		if err != nil {
			return nil, engineError(err, c.param())
		}
		normalise(v)
		total += n
		out.Data[i] = embedding{Object: "embedding", Index: i}
		if c.base64 {
			b := make([]byte, 4*len(v))
			for k, f := range v {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(f))
			}
			out.Data[i].Embedding = base64.StdEncoding.EncodeToString(b)
		} else {
			out.Data[i].Embedding = v
		}
	}
	out.Usage = embeddingUsage{PromptTokens: total, TotalTokens: total}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &providers.Response{Body: b, Usage: &providers.Usage{PromptTokens: int64(total)}}, nil
}

// normalise scales v to unit length, as OpenAI's embeddings are.
func normalise(v []float32) {
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if sum == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
}

// Stream starts a streaming request. A full queue or a request that does
// not fit fails here, before anything reaches the client, so the router
// can fall back.
func (p *Provider) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	c, err := p.parse(req)
	if err != nil {
		return nil, err
	}
	if c.op == providers.OpEmbeddings {
		return nil, invalid("stream", "embeddings cannot be streamed")
	}
	ctx, cancel := context.WithCancel(ctx)
	g, err := c.start(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	st := &stream{p: p, c: c, g: g, cancel: cancel, created: p.created()}
	if c.tools != nil {
		st.parser = newCallParser(c.tools)
	}
	return st, nil
}

// stream produces OpenAI chunks: the role, the text deltas and tool-call
// deltas, the finish reason, then a usage-only chunk (the gateway drops
// it unless the client asked for stream_options.include_usage).
type stream struct {
	p       *Provider
	c       *call
	g       *Generation
	cancel  context.CancelFunc
	created int64
	state   int // 0 role, 1 text, 2 usage, 3 done
	usage   usageBody
	parser  *callParser // nil without tools
	calls   int
	queue   []providers.Event // chunks made, not yet returned
}

func (s *stream) Recv() (providers.Event, error) {
	for {
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue = s.queue[1:]
			return ev, nil
		}
		if err := s.fill(); err != nil {
			return providers.Event{}, err
		}
	}
}

// fill makes the next chunks.
func (s *stream) fill() error {
	switch s.state {
	case 0:
		s.state = 1
		if s.c.op == providers.OpChat {
			empty := ""
			return s.chunk(&chatDelta{Role: "assistant", Content: &empty}, "", nil)
		}
		return nil
	case 1:
		text, err := s.g.Next()
		if err == io.EOF {
			s.state = 2
			if s.parser != nil {
				if err := s.events(s.parser.flush()); err != nil {
					return err
				}
			}
			finish, u := s.g.Result()
			s.usage = usageJSON(u)
			if s.c.op == providers.OpChat {
				finish = finishReason(finish, s.calls)
				return s.chunk(&chatDelta{}, "", &finish)
			}
			return s.chunk(nil, "", &finish)
		}
		if err != nil {
			s.state = 3
			return engineError(err, s.c.param())
		}
		if s.parser != nil {
			err := s.events(s.parser.push(text))
			if s.parser.done && !s.c.tools.constrained() {
				s.g.Stop() // parallel_tool_calls false: the first call ends the answer
			}
			return err
		}
		if s.c.op == providers.OpChat {
			return s.chunk(&chatDelta{Content: &text}, "", nil)
		}
		return s.chunk(nil, text, nil)
	case 2:
		s.state = 3
		var out any
		if s.c.op == providers.OpChat {
			out = chatCompletion{ID: "chatcmpl-" + s.c.id, Object: "chat.completion.chunk", Created: s.created, Model: s.c.name, Choices: []chatChoice{}, Usage: &s.usage}
		} else {
			out = textCompletion{ID: "cmpl-" + s.c.id, Object: "text_completion", Created: s.created, Model: s.c.name, Choices: []textChoice{}, Usage: &s.usage}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		s.queue = append(s.queue, providers.Event{Data: b, Usage: s.usage.normalised(), UsageOnly: true})
		return nil
	}
	return io.EOF
}

// events turns the call parser's output into chunks: text as content
// deltas; a call as one delta with its id, type and name, then one with
// its arguments.
func (s *stream) events(evs []toolEvent) error {
	for _, ev := range evs {
		if ev.Call == nil {
			text := ev.Text
			if err := s.chunk(&chatDelta{Content: &text}, "", nil); err != nil {
				return err
			}
			continue
		}
		i := s.calls
		s.calls++
		head := toolCallDelta{Index: i, ID: newCallID(), Type: "function", Function: functionCall{Name: ev.Call.Name}}
		args := toolCallDelta{Index: i, Function: functionCall{Arguments: ev.Call.Arguments}}
		if err := s.chunk(&chatDelta{ToolCalls: []toolCallDelta{head}}, "", nil); err != nil {
			return err
		}
		if err := s.chunk(&chatDelta{ToolCalls: []toolCallDelta{args}}, "", nil); err != nil {
			return err
		}
	}
	return nil
}

// chunk queues one chunk.
func (s *stream) chunk(delta *chatDelta, text string, finish *string) error {
	var out any
	if s.c.op == providers.OpChat {
		out = chatCompletion{ID: "chatcmpl-" + s.c.id, Object: "chat.completion.chunk", Created: s.created, Model: s.c.name,
			Choices: []chatChoice{{Delta: delta, FinishReason: finish}}}
	} else {
		out = textCompletion{ID: "cmpl-" + s.c.id, Object: "text_completion", Created: s.created, Model: s.c.name,
			Choices: []textChoice{{Text: text, FinishReason: finish}}}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	s.queue = append(s.queue, providers.Event{Data: b})
	return nil
}

func (s *stream) Close() error {
	s.cancel()
	return nil
}

// engineError maps the engine's errors to the gateway's upstream error.
func engineError(err error, param string) error {
	var pe *providers.Error
	var ce *ContextError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &ce):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "context_length_exceeded", Param: param, Message: ce.Error(), Err: err}
	case errors.Is(err, ErrQueueFull):
		return &providers.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "local_engine_busy", Message: "the local engine is at capacity; try again shortly", Retryable: true, RetryAfter: "1", Err: err}
	case errors.Is(err, ErrClosed):
		return &providers.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "model_not_loaded", Message: "the local model is not loaded", Retryable: true, Err: err}
	case errors.Is(err, ErrEmpty):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Param: param, Message: "the prompt is empty", Err: err}
	case errors.Is(err, ErrNUL):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Message: "the local engine cannot take text with NUL (\\u0000) characters", Err: err}
	case errors.Is(err, ErrWrongKind):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_operation", Param: "model", Message: "this local model does not serve that operation (embedding models serve only /v1/embeddings)", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, ErrTemplate):
		return &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Param: param, Message: err.Error(), Err: err}
	}
	return &providers.Error{Status: http.StatusInternalServerError, Type: "server_error", Code: providers.CodeUpstreamError, Message: "the local engine failed", Retryable: true, Err: err}
}

// invalid is a 400 naming the parameter, as every provider answers it.
func invalid(param, msg string) error { return chatwire.Invalid(param, "%s", msg) }

// newCallID is a tool call's id, OpenAI-style.
func newCallID() string { return "call_" + newID() }

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
