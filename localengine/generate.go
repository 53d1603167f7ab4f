package localengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// Message is one chat message for the model's chat template.
type Message struct {
	Role    string
	Content string
}

// applyTemplate formats messages with the model's chat template (or the
// configured override) and opens the assistant's turn.
func (m *Model) applyTemplate(msgs []Message) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("no messages")
	}
	chat := make([]llama.ChatMessage, len(msgs))
	size := 0
	for i, msg := range msgs {
		if strings.IndexByte(msg.Role, 0) >= 0 || strings.IndexByte(msg.Content, 0) >= 0 {
			return "", ErrNUL
		}
		chat[i] = llama.NewChatMessage(msg.Role, msg.Content)
		size += len(msg.Role) + len(msg.Content)
	}
	buf := make([]byte, 2*size+256)
	for range 2 {
		n := llama.ChatApplyTemplate(m.template, chat, true, buf)
		if n < 0 {
			return "", fmt.Errorf("chat template not supported by llama.cpp (set chat_template to a built-in name such as chatml)")
		}
		if int(n) <= len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, n)
	}
	return "", errors.New("chat template output kept growing")
}

// ChatPrompt is the prompt text a chat request becomes.
func (m *Model) ChatPrompt(msgs []Message) (string, error) { return m.applyTemplate(msgs) }

// Sampling are the sampling parameters of one request. Temperature 0 is
// greedy decoding.
type Sampling struct {
	Temperature      float32
	TopP             float32 // 1 disables
	TopK             int32   // 0 disables
	MinP             float32 // 0 disables
	Seed             uint32
	RepeatPenalty    float32 // 1 disables
	FrequencyPenalty float32
	PresencePenalty  float32
	RepeatLastN      int32 // tokens the penalties look back over; default 64
}

// DefaultSampling is OpenAI's defaults (temperature 1, top_p 1) with
// llama-server's top_k 40 and min_p 0.05.
func DefaultSampling() Sampling {
	return Sampling{Temperature: 1, TopP: 1, TopK: 40, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64}
}

// Request is one generation.
type Request struct {
	// Prompt is the text to continue; for chat, ChatPrompt's output.
	Prompt string
	// MaxTokens caps the completion; 0 means up to the context window.
	MaxTokens int
	// Stop sequences end the completion; they are not part of the text.
	Stop     []string
	Sampling Sampling
}

// Usage is the engine's exact token count for one request.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int // prompt tokens whose KV was reused from the slot
}

// Finish reasons, as OpenAI names them.
const (
	FinishStop   = "stop"
	FinishLength = "length"
)

// job is a request inside the engine: the caller's side reads what the
// scheduler appends under mu.
type job struct {
	ctx       context.Context
	prompt    []llama.Token
	maxTokens int
	sampling  Sampling
	embed     bool
	enqueued  time.Time

	out textOut // scheduler only

	mu        sync.Mutex
	pending   strings.Builder
	finished  bool
	finish    string
	err       error
	usage     Usage
	embedding []float32
	notify    chan struct{} // capacity 1: something new under mu
}

func (j *job) emit(text string) {
	if text == "" {
		return
	}
	j.mu.Lock()
	j.pending.WriteString(text)
	j.mu.Unlock()
	j.signal()
}

func (j *job) end(finish string, err error, u Usage) {
	j.mu.Lock()
	if !j.finished {
		j.finished, j.finish, j.err, j.usage = true, finish, err, u
	}
	j.mu.Unlock()
	j.signal()
}

func (j *job) signal() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// Generation is a running request. Next returns text as the scheduler
// produces it; a slow reader gets it coalesced, never holding the
// scheduler up.
type Generation struct {
	j    *job
	done bool
}

// Generate tokenizes the prompt, checks it against the context window
// and queues it. It fails at once with ErrQueueFull when every slot is
// busy and the queue is full, and with *ContextError when the request
// cannot fit. Canceling ctx ends the generation and frees its slot.
func (m *Model) Generate(ctx context.Context, req Request) (*Generation, error) {
	if m.spec.Embeddings {
		return nil, ErrWrongKind
	}
	if strings.IndexByte(req.Prompt, 0) >= 0 {
		return nil, ErrNUL // the binding would pass llama.cpp a nil pointer
	}
	prompt := llama.Tokenize(m.vocab, req.Prompt, true, true)
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if len(prompt) >= m.window {
		return nil, &ContextError{Prompt: len(prompt), Window: m.window}
	}
	maxTokens := req.MaxTokens
	if maxTokens > 0 && len(prompt)+maxTokens > m.window {
		return nil, &ContextError{Prompt: len(prompt), MaxTokens: maxTokens, Window: m.window}
	}
	if maxTokens <= 0 {
		maxTokens = m.window - len(prompt)
	}
	stops := make([]string, 0, len(req.Stop))
	for _, s := range req.Stop {
		if s != "" {
			stops = append(stops, s)
		}
	}
	j := &job{ctx: ctx, prompt: prompt, maxTokens: maxTokens, sampling: req.Sampling, enqueued: time.Now(),
		out: textOut{stops: stops}, notify: make(chan struct{}, 1)}
	if err := m.enqueue(j); err != nil {
		return nil, err
	}
	return &Generation{j: j}, nil
}

func (m *Model) enqueue(j *job) error {
	select {
	case <-m.quit:
		return ErrClosed
	default:
	}
	select {
	case m.jobs <- j:
		return nil
	default:
		m.stats.rejected.Add(1)
		return ErrQueueFull
	}
}

// Next returns the text produced since the last call. After the last
// text it returns io.EOF; Result then tells why generation ended. An
// engine failure or the request's context ending returns that error.
func (g *Generation) Next() (string, error) {
	if g.done {
		return "", io.EOF
	}
	j := g.j
	for {
		j.mu.Lock()
		text := j.pending.String()
		j.pending.Reset()
		finished, err := j.finished, j.err
		j.mu.Unlock()
		if text != "" {
			return text, nil
		}
		if finished {
			g.done = true
			if err != nil {
				return "", err
			}
			return "", io.EOF
		}
		select {
		case <-j.notify:
		case <-j.ctx.Done():
			// The scheduler notices at its next step and frees the slot.
			return "", j.ctx.Err()
		}
	}
}

// Result is how the generation ended and its exact usage; valid once Next
// returned io.EOF.
func (g *Generation) Result() (finish string, u Usage) {
	g.j.mu.Lock()
	defer g.j.mu.Unlock()
	return g.j.finish, g.j.usage
}

// Embed returns the mean-pooled embedding of text (embedding models only).
// The input must fit in one batch and the context window.
func (m *Model) Embed(ctx context.Context, text string) ([]float32, int, error) {
	if !m.spec.Embeddings {
		return nil, 0, ErrWrongKind
	}
	if strings.IndexByte(text, 0) >= 0 {
		return nil, 0, ErrNUL
	}
	toks := llama.Tokenize(m.vocab, text, true, false)
	if len(toks) == 0 {
		return nil, 0, errors.New("empty input")
	}
	if limit := min(m.window, m.spec.Batch); len(toks) > limit {
		return nil, 0, &ContextError{Prompt: len(toks), Window: limit}
	}
	j := &job{ctx: ctx, prompt: toks, embed: true, enqueued: time.Now(), notify: make(chan struct{}, 1)}
	if err := m.enqueue(j); err != nil {
		return nil, 0, err
	}
	for {
		j.mu.Lock()
		finished, err, emb := j.finished, j.err, j.embedding
		j.mu.Unlock()
		if finished {
			return emb, len(toks), err
		}
		select {
		case <-j.notify:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}
