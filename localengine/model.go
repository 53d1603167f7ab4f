package localengine

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// Spec describes one model to serve. Zero values take the documented
// defaults.
type Spec struct {
	// Name is the model's name in routes and /v1/models.
	Name string
	// Path is the GGUF file.
	Path string
	// Context is the context window of each slot, in tokens: prompt plus
	// completion. Default 2048, capped by what the model was trained for.
	Context int
	// Slots is how many sequences are decoded together. Default 4.
	Slots int
	// Queue is how many requests may wait for a slot; beyond it a request
	// gets a retryable ErrQueueFull. Default 64.
	Queue int
	// Batch is the most tokens one decode step takes (prompt chunks and
	// one token per generating sequence). Default 512.
	Batch int
	// GPULayers is how many layers to offload to a GPU; -1 offloads all.
	// Default 0 (CPU).
	GPULayers int
	// Threads is the CPU threads per decode. Default: half the CPUs, at
	// least 1 (1 on a 2-core machine). ggml's threads spin-wait for each
	// other, so a thread that loses its core to another process stalls the
	// whole step: on 2 cores, 2 threads were 2.2x faster than 1 when idle
	// and 7x slower with one core busy (docs/localengine.md).
	Threads int
	// ChatTemplate overrides the model's own tokenizer.chat_template: a
	// llama.cpp built-in name (chatml, llama3, mistral-v7, …) or a
	// template text.
	ChatTemplate string
	// Embeddings loads the model as an embedding model (mean pooling): it
	// then serves /v1/embeddings and not generation.
	Embeddings bool
}

func (s Spec) withDefaults() Spec {
	if s.Context <= 0 {
		s.Context = 2048
	}
	if s.Slots <= 0 {
		s.Slots = 4
	}
	if s.Queue <= 0 {
		s.Queue = 64
	}
	if s.Batch <= 0 {
		s.Batch = 512
	}
	// Every generating slot puts one token into each step: llama.cpp
	// aborts the process when a batch can hold fewer outputs than slots.
	s.Batch = max(s.Batch, s.Slots)
	if s.Threads <= 0 {
		s.Threads = max(1, runtime.NumCPU()/2)
	}
	return s
}

// Errors a request can get before it is scheduled.
var (
	// ErrQueueFull means every slot is busy and the queue is full; another
	// deployment may serve the request.
	ErrQueueFull = errors.New("local engine: all slots busy and the queue is full")
	// ErrClosed means the model was unloaded.
	ErrClosed = errors.New("local engine: model unloaded")
	// ErrNUL is text with a NUL character, which llama.cpp's C API cannot
	// take.
	ErrNUL = errors.New("local engine: text contains a NUL character")
	// ErrTemplate is a chat the chat template cannot format.
	ErrTemplate = errors.New("chat template")
	// ErrEmpty is a prompt or input with no tokens.
	ErrEmpty = errors.New("local engine: empty prompt")
	// ErrWrongKind is a generation request to an embedding model or the
	// other way round.
	ErrWrongKind = errors.New("local engine: operation not served by this model")
)

// ContextError is a request that does not fit the context window.
type ContextError struct {
	Prompt    int // prompt tokens
	MaxTokens int // requested completion tokens, 0 if none
	Window    int // the slot's context window
}

func (e *ContextError) Error() string {
	if e.MaxTokens > 0 {
		return fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the prompt, %d in the completion). Please reduce the prompt or the completion length.",
			e.Window, e.Prompt+e.MaxTokens, e.Prompt, e.MaxTokens)
	}
	return fmt.Sprintf("This model's maximum context length is %d tokens. However, the prompt is %d tokens. Please reduce the length of the prompt.", e.Window, e.Prompt)
}

// Model is one loaded model with its scheduler. Its methods are safe for
// concurrent use; the llama.cpp context is touched only by the scheduler
// goroutine.
type Model struct {
	spec     Spec
	model    llama.Model
	lctx     llama.Context
	vocab    llama.Vocab
	template string
	window   int // tokens per slot
	nEmbd    int32
	nVocab   int32

	jobs chan *job
	quit chan struct{}
	done chan struct{}
	// mu guards closed: callers hold it for reading while they use the
	// vocabulary or enqueue, Close for writing before it frees anything,
	// so nothing touches a freed model and no job is queued after the
	// scheduler's last drain.
	mu     sync.RWMutex
	closed bool
	// recurrent models cannot drop part of a sequence's state, so they
	// get no prefix reuse.
	recurrent bool

	stats stats
}

// Load reads a GGUF file and starts its scheduler. Errors name the file
// and the cause (missing, not a GGUF, not loadable, out of memory).
func (rt *Runtime) Load(spec Spec) (*Model, error) {
	spec = spec.withDefaults()
	if err := checkGGUF(spec.Path); err != nil {
		return nil, fmt.Errorf("model %q: %w", spec.Name, err)
	}
	mp := llama.ModelDefaultParams()
	mp.NGpuLayers = int32(spec.GPULayers)
	if spec.GPULayers < 0 {
		mp.NGpuLayers = 999
	}
	lm, err := llama.ModelLoadFromFile(spec.Path, mp)
	if err != nil || lm == 0 {
		return nil, fmt.Errorf("model %q: llama.cpp could not load %s (corrupt or unsupported GGUF, or not enough memory): %v", spec.Name, spec.Path, err)
	}
	window := spec.Context
	if train := int(llama.ModelNCtxTrain(lm)); train > 0 && window > train {
		window = train
	}
	cp := llama.ContextDefaultParams()
	cp.NCtx = uint32(window * spec.Slots)
	cp.NBatch = uint32(spec.Batch)
	cp.NUbatch = uint32(spec.Batch)
	cp.NSeqMax = uint32(spec.Slots)
	cp.NThreads = int32(spec.Threads)
	cp.NThreadsBatch = int32(spec.Threads)
	cp.KVUnified = 0
	if spec.Embeddings {
		// One KV pool for all sequences: with per-sequence pools llama.cpp
		// splits a step into equal micro-batches per sequence, and mean
		// pooling would then see only the last chunk of a long input.
		cp.KVUnified = 1
		cp.Embeddings = 1
		cp.PoolingType = llama.PoolingTypeUnspecified // the model's own (CLS, last, mean)
	}
	lctx, err := llama.InitFromModel(lm, cp)
	if err == nil && lctx != 0 && spec.Embeddings && llama.GetPoolingType(lctx) == llama.PoolingTypeNone {
		// A generative model says nothing about pooling: average.
		llama.Free(lctx)
		cp.PoolingType = llama.PoolingTypeMean
		lctx, err = llama.InitFromModel(lm, cp)
	}
	if err != nil || lctx == 0 {
		llama.ModelFree(lm)
		return nil, fmt.Errorf("model %q: creating a context of %d tokens x %d slots failed (not enough memory?): %v", spec.Name, window, spec.Slots, err)
	}
	perRequest := int(llama.NCtxSeq(lctx))
	if spec.Embeddings {
		// One unified KV pool: NCtxSeq is the whole pool, every slot's;
		// a request still gets one slot's window.
		perRequest = window
	}
	m := &Model{
		spec:      spec,
		model:     lm,
		lctx:      lctx,
		vocab:     llama.ModelGetVocab(lm),
		window:    perRequest,
		nEmbd:     llama.ModelNEmbd(lm),
		nVocab:    llama.VocabNTokens(llama.ModelGetVocab(lm)),
		jobs:      make(chan *job, spec.Queue),
		recurrent: llama.ModelIsRecurrent(lm) || llama.ModelIsHybrid(lm),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if !spec.Embeddings {
		m.template = spec.ChatTemplate
		if m.template == "" {
			m.template = llama.ModelChatTemplate(lm, "")
		}
		if m.template == "" {
			m.template = "chatml"
		}
		if _, err := m.applyTemplate([]Message{{Role: "user", Content: "hi"}}); err != nil {
			m.free()
			return nil, fmt.Errorf("model %q: %w", spec.Name, err)
		}
	}
	go m.run()
	return m, nil
}

// checkGGUF fails early, with a clear message, on a file that is missing
// or is not a GGUF file at all; llama.cpp checks the rest.
func checkGGUF(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("model file: %w", err)
	}
	defer f.Close()
	var head [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil || string(head[:4]) != "GGUF" {
		return fmt.Errorf("model file %s is not a GGUF file", path)
	}
	return nil
}

// Name is the model's configured name.
func (m *Model) Name() string { return m.spec.Name }

// Window is the context window of one request, in tokens.
func (m *Model) Window() int { return m.window }

// Embeddings reports whether this is an embedding model.
func (m *Model) Embeddings() bool { return m.spec.Embeddings }

// Close stops the scheduler, fails queued and running requests with
// ErrClosed, and frees the model.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.quit)
	<-m.done
	m.free()
	return nil
}

// use runs f with the model held open; ErrClosed once it is closed.
func (m *Model) use(f func() error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return f()
}

func (m *Model) free() {
	if m.lctx != 0 {
		llama.Free(m.lctx)
		m.lctx = 0
	}
	if m.model != 0 {
		llama.ModelFree(m.model)
		m.model = 0
	}
}

// Tokenize turns text into the model's tokens; special adds BOS as the
// model wants and parses control tokens such as <|im_start|>.
func (m *Model) Tokenize(text string, special bool) []int32 {
	var out []int32
	_ = m.use(func() error {
		for _, t := range llama.Tokenize(m.vocab, text, special, special) {
			out = append(out, int32(t))
		}
		return nil
	})
	return out
}

// Stats is the scheduler's state, for the router and metrics.
type Stats struct {
	Slots        int     `json:"slots"`
	ActiveSlots  int     `json:"active_slots"`
	Queued       int     `json:"queued"`
	TokensPerSec float64 `json:"tokens_per_second"` // generated, over the last few seconds
	TTFTMs       float64 `json:"ttft_ms"`           // moving average
	Generated    int64   `json:"generated_tokens"`  // since load
	Rejected     int64   `json:"rejected_queue_full"`
}

type stats struct {
	active    atomic.Int32
	generated atomic.Int64
	rejected  atomic.Int64
	mu        sync.Mutex
	ttftMs    float64
	rate      float64 // tokens/s, exponentially smoothed
	rateAt    time.Time
	rateN     int64
}

// Stats reports the scheduler's state.
func (m *Model) Stats() Stats {
	m.stats.mu.Lock()
	defer m.stats.mu.Unlock()
	rate := m.stats.rate
	if time.Since(m.stats.rateAt) > 5*time.Second {
		rate = 0 // idle
	}
	return Stats{
		Slots:        m.spec.Slots,
		ActiveSlots:  int(m.stats.active.Load()),
		Queued:       len(m.jobs),
		TokensPerSec: rate,
		TTFTMs:       m.stats.ttftMs,
		Generated:    m.stats.generated.Load(),
		Rejected:     m.stats.rejected.Load(),
	}
}

// observeTTFT folds one time to first token into the moving average.
func (s *stats) observeTTFT(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := float64(d) / float64(time.Millisecond)
	if s.ttftMs == 0 {
		s.ttftMs = ms
	} else {
		s.ttftMs = 0.8*s.ttftMs + 0.2*ms
	}
}

// observeTokens counts n generated tokens towards the rate, recomputed
// about once a second.
func (s *stats) observeTokens(n int) {
	s.generated.Add(int64(n))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.rateAt.IsZero() || now.Sub(s.rateAt) > 5*time.Second {
		s.rateAt, s.rateN = now, 0
	}
	s.rateN += int64(n)
	if el := now.Sub(s.rateAt); el >= time.Second {
		r := float64(s.rateN) / el.Seconds()
		if s.rate == 0 {
			s.rate = r
		} else {
			s.rate = 0.5*s.rate + 0.5*r
		}
		s.rateAt, s.rateN = now, 0
	}
}
