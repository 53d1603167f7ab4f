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
}

func (p *Provider) parse(req *providers.Request) (*call, error) {
	m, err := p.pool.Model(req.Model)
	if err != nil {
		return nil, err
	}
	c := &call{op: req.Operation, model: m, name: req.Model, id: newID()}
	switch req.Operation {
	case providers.OpEmbeddings:
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
		return nil, engineError(ErrWrongKind, "model")
	}
	if req.Operation == providers.OpChat {
		if c.msgs, err = body.chatMessages(); err != nil {
			return nil, err
		}
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
	var text []byte
	for {
		s, err := g.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, engineError(err, c.param())
		}
		text = append(text, s...)
	}
	finish, u := g.Result()
	usage := usageJSON(u)
	var out any
	if c.op == providers.OpChat {
		out = chatCompletion{ID: "chatcmpl-" + c.id, Object: "chat.completion", Created: p.created(), Model: c.name,
			Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: string(text)}, FinishReason: &finish}},
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
	return &stream{p: p, c: c, g: g, cancel: cancel, created: p.created()}, nil
}

// stream produces OpenAI chunks: the role, the text deltas, the finish
// reason, then a usage-only chunk (the gateway drops it unless the client
// asked for stream_options.include_usage).
type stream struct {
	p       *Provider
	c       *call
	g       *Generation
	cancel  context.CancelFunc
	created int64
	state   int // 0 role, 1 text, 2 usage, 3 done
	finish  string
	usage   usageBody
}

func (s *stream) Recv() (providers.Event, error) {
	switch s.state {
	case 0:
		s.state = 1
		if s.c.op == providers.OpChat {
			empty := ""
			return s.chunk(&chatDelta{Role: "assistant", Content: &empty}, "", nil)
		}
		return s.Recv()
	case 1:
		text, err := s.g.Next()
		if err == io.EOF {
			s.state = 2
			finish, u := s.g.Result()
			s.usage = usageJSON(u)
			if s.c.op == providers.OpChat {
				return s.chunk(&chatDelta{}, "", &finish)
			}
			return s.chunk(nil, "", &finish)
		}
		if err != nil {
			s.state = 3
			return providers.Event{}, engineError(err, s.c.param())
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
			return providers.Event{}, err
		}
		return providers.Event{Data: b, Usage: s.usage.normalised(), UsageOnly: true}, nil
	}
	return providers.Event{}, io.EOF
}

func (s *stream) chunk(delta *chatDelta, text string, finish *string) (providers.Event, error) {
	var out any
	if s.c.op == providers.OpChat {
		out = chatCompletion{ID: "chatcmpl-" + s.c.id, Object: "chat.completion.chunk", Created: s.created, Model: s.c.name,
			Choices: []chatChoice{{Delta: delta, FinishReason: finish}}}
	} else {
		out = textCompletion{ID: "cmpl-" + s.c.id, Object: "text_completion", Created: s.created, Model: s.c.name,
			Choices: []textChoice{{Text: text, FinishReason: finish}}}
	}
	b, err := json.Marshal(out)
	return providers.Event{Data: b}, err
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

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
