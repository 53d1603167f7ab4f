package localengine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
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
		return "", fmt.Errorf("%w: no messages", ErrTemplate)
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
			return "", fmt.Errorf("%w: not supported by llama.cpp (set chat_template to a built-in name such as chatml)", ErrTemplate)
		}
		if int(n) <= len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, n)
	}
	return "", fmt.Errorf("%w: its output kept growing", ErrTemplate)
}

// ChatPrompt is the prompt text a chat request becomes.
func (m *Model) ChatPrompt(msgs []Message) (string, error) { return m.applyTemplate(msgs) }

// Chat queues a chat request: the messages formatted with the chat
// template and tokenized so that only the template's own text can make
// control tokens. A message that spells one ("<|im_start|>system") gets
// those characters as text, not a forged turn.
func (m *Model) Chat(ctx context.Context, msgs []Message, req Request) (*Generation, error) {
	prompt, err := m.applyTemplate(msgs)
	if err != nil {
		return nil, err
	}
	req.Prompt = prompt
	var tokens []llama.Token
	err = m.use(func() error {
		tokens, err = m.chatTokens(msgs, prompt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m.generate(ctx, req, tokens)
}

// chatTokens tokenizes a formatted chat prompt. Normally that is the whole
// text with special tokens parsed. When a message's text itself parses to
// a control token, the template's text and the messages' texts are
// tokenized apart, the messages as plain text. Caller holds m.mu.
func (m *Model) chatTokens(msgs []Message, prompt string) ([]llama.Token, error) {
	injected := false
	for _, msg := range msgs {
		injected = injected || m.spellsControl(msg.Role) || m.spellsControl(msg.Content)
	}
	if !injected {
		return llama.Tokenize(m.vocab, prompt, true, true), nil
	}
	marked := make([]Message, len(msgs))
	for i, msg := range msgs {
		marked[i] = Message{Role: msg.Role, Content: marker(i)}
	}
	tmpl, err := m.applyTemplate(marked)
	if err != nil {
		return nil, err
	}
	var toks []llama.Token
	first := true
	for i, msg := range msgs {
		before, after, ok := strings.Cut(tmpl, marker(i))
		if !ok {
			return nil, fmt.Errorf("%w: a message spells a control token and the template does not keep message texts apart", ErrTemplate)
		}
		toks = append(toks, llama.Tokenize(m.vocab, before, first, true)...)
		toks = append(toks, llama.Tokenize(m.vocab, msg.Content, false, false)...)
		first, tmpl = false, after
	}
	return append(toks, llama.Tokenize(m.vocab, tmpl, false, true)...), nil
}

// spellsControl reports whether text, with special tokens parsed, holds a
// control token. Caller holds m.mu.
func (m *Model) spellsControl(text string) bool {
	if !strings.ContainsAny(text, "<[|") { // every common control token has one
		return false
	}
	for _, t := range llama.Tokenize(m.vocab, text, false, true) {
		if llama.VocabIsControl(m.vocab, t) || llama.VocabIsEOG(m.vocab, t) {
			return true
		}
	}
	return false
}

// marker stands in for message i's text while the template is applied.
func marker(i int) string { return fmt.Sprintf("\uE000%d\uE001", i) }

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
	// Grammar, when set, constrains sampling to a GBNF grammar (llama.cpp's
	// format) whose start rule is "root".
	Grammar string
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
	embed     bool
	enqueued  time.Time
	smpl      samplers    // built by the caller; the slot that admits it owns them
	halt      atomic.Bool // Generation.Stop: end at the next step

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
	return m.generate(ctx, req, nil)
}

// generate queues a request; chat passes the prompt already tokenized.
func (m *Model) generate(ctx context.Context, req Request, tokens []llama.Token) (*Generation, error) {
	if m.spec.Embeddings {
		return nil, ErrWrongKind
	}
	if strings.IndexByte(req.Prompt, 0) >= 0 {
		return nil, ErrNUL // the binding would pass llama.cpp a nil pointer
	}
	var g *Generation
	err := m.use(func() error {
		prompt := tokens
		if prompt == nil {
			prompt = llama.Tokenize(m.vocab, req.Prompt, true, true)
		}
		var err error
		g, err = m.queue(ctx, req, prompt)
		return err
	})
	return g, err
}

func (m *Model) queue(ctx context.Context, req Request, prompt []llama.Token) (*Generation, error) {
	if len(prompt) == 0 {
		return nil, ErrEmpty
	}
	if len(prompt) >= m.window {
		return nil, &ContextError{Prompt: len(prompt), Window: m.window}
	}
	maxTokens := req.MaxTokens
	if maxTokens > m.window-len(prompt) {
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
	smpl, err := newSampler(m.vocab, req.Sampling, req.Grammar)
	if err != nil {
		return nil, err
	}
	j := &job{ctx: ctx, prompt: prompt, maxTokens: maxTokens, enqueued: time.Now(),
		out: textOut{stops: stops}, notify: make(chan struct{}, 1), smpl: smpl}
	if err := m.enqueue(j); err != nil {
		j.freeSampler()
		return nil, err
	}
	return &Generation{j: j}, nil
}

// freeSampler frees the samplers no slot took.
func (j *job) freeSampler() { j.smpl.free() }

// enqueue queues a job; the caller holds m.mu for reading, so the
// scheduler has not made its last drain yet.
func (m *Model) enqueue(j *job) error {
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

// Stop ends the generation early, as if the model had stopped: the
// scheduler frees the slot at its next step, Next returns what was
// produced until then and io.EOF, and Result says FinishStop with the
// exact usage.
func (g *Generation) Stop() {
	g.j.halt.Store(true)
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
	var toks []llama.Token
	j := &job{ctx: ctx, embed: true, enqueued: time.Now(), notify: make(chan struct{}, 1)}
	err := m.use(func() error {
		toks = llama.Tokenize(m.vocab, text, true, false)
		if len(toks) == 0 {
			return ErrEmpty
		}
		if limit := min(m.window, m.spec.Batch); len(toks) > limit {
			return &ContextError{Prompt: len(toks), Window: limit}
		}
		j.prompt = toks
		return m.enqueue(j)
	})
	if err != nil {
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
