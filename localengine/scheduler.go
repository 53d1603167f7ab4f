package localengine

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// slot is one sequence of the llama.cpp context (seq id = index). Its KV
// cells hold cache; a finished request leaves them there so that the next
// prompt sharing a prefix skips that much prefill.
type slot struct {
	seq    llama.SeqId
	job    *job
	cache  []llama.Token // tokens whose KV is in this sequence, in order
	nPast  int           // prompt tokens already in the KV
	last   llama.Token   // sampled, not yet decoded
	smpl   samplers
	iBatch int32 // batch index of this slot's logits in the current step, -1 if none
	usage  Usage
	start  time.Time
}

func (s *slot) generating() bool { return s.job != nil && s.nPast == len(s.job.prompt) }

// run is the scheduler: the only goroutine that touches the llama.cpp
// context. Each step it admits queued requests into free slots, puts every
// generating slot's next token and as much pending prompt as fits into one
// batch, decodes it, and samples each slot at its own batch index.
func (m *Model) run() {
	defer close(m.done)
	slots := make([]*slot, m.spec.Slots)
	for i := range slots {
		slots[i] = &slot{seq: llama.SeqId(i), iBatch: -1}
	}
	batch := llama.BatchInit(int32(m.spec.Batch), 0, 1)
	mem, memErr := llama.GetMemory(m.lctx)
	piece := make([]byte, 256)
	var cands []llama.TokenData // grammar sampling's candidates, reused
	defer func() {
		for _, s := range slots {
			if s.job != nil {
				s.job.end("", ErrClosed, s.usage)
			}
			s.smpl.free()
		}
		for {
			select {
			case j := <-m.jobs:
				j.freeSampler()
				j.end("", ErrClosed, Usage{})
			default:
				llama.BatchFree(batch)
				return
			}
		}
	}()
	if memErr != nil {
		m.failAll(slots, fmt.Errorf("local engine: no KV memory: %w", memErr))
		<-m.quit
		return
	}
	rr := 0 // round-robin start, so no slot always gets the prompt budget first
	for {
		busy := m.busy(slots)
		if busy == 0 {
			m.stats.active.Store(0)
			select {
			case j := <-m.jobs:
				m.admit(mem, slots, j)
			case <-m.quit:
				return
			}
		}
		// Fill the other free slots without waiting.
	admit:
		for m.busy(slots) < len(slots) {
			select {
			case j := <-m.jobs:
				m.admit(mem, slots, j)
			default:
				break admit
			}
		}
		select {
		case <-m.quit:
			return
		default:
		}
		// A canceled request leaves at once; its slot is free this step.
		// A stopped one ends as if the model had stopped.
		for _, s := range slots {
			switch {
			case s.job == nil:
			case s.job.ctx.Err() != nil:
				m.release(s, "", s.job.ctx.Err())
			case s.job.halt.Load():
				m.release(s, FinishStop, nil)
			}
		}
		m.stats.active.Store(int32(m.busy(slots)))
		if m.busy(slots) == 0 {
			continue
		}

		batch.Clear()
		budget := m.spec.Batch
		for _, s := range slots {
			s.iBatch = -1
			if s.generating() {
				s.iBatch = batch.NTokens
				_ = batch.Add(s.last, llama.Pos(len(s.cache)), []llama.SeqId{s.seq}, true)
				budget--
			}
		}
		type chunk struct {
			s *slot
			n int
		}
		var chunks []chunk
		for k := range slots {
			s := slots[(rr+k)%len(slots)]
			if s.job == nil || s.generating() || budget <= 0 {
				continue
			}
			rest := s.job.prompt[s.nPast:]
			if s.job.embed && len(rest) > budget {
				continue // pooling needs the whole input in one step
			}
			n := min(len(rest), budget)
			for i, t := range rest[:n] {
				last := s.nPast+i == len(s.job.prompt)-1
				if last && !s.job.embed {
					s.iBatch = batch.NTokens
				}
				// Embeddings need every token's output for pooling.
				_ = batch.Add(t, llama.Pos(len(s.cache)+i), []llama.SeqId{s.seq}, last || s.job.embed)
			}
			chunks = append(chunks, chunk{s, n})
			budget -= n
		}
		rr++

		rc, err := llama.Decode(m.lctx, batch)
		if err == nil && rc != 0 {
			err = fmt.Errorf("llama_decode returned %d", rc)
		}
		if err != nil {
			err = fmt.Errorf("local engine: decode failed: %w", err)
			for _, s := range slots {
				if s.job != nil {
					_, _ = llama.MemorySeqRm(mem, s.seq, -1, -1)
					s.cache = s.cache[:0]
					m.release(s, "", err)
				}
			}
			continue
		}
		// What was decoded is now in the KV.
		for _, c := range chunks {
			c.s.cache = append(c.s.cache, c.s.job.prompt[c.s.nPast:c.s.nPast+c.n]...)
			c.s.nPast += c.n
		}
		generated := 0
		for _, s := range slots {
			if s.job == nil {
				continue
			}
			if s.job.embed {
				if s.nPast == len(s.job.prompt) {
					m.finishEmbedding(mem, s)
				}
				continue
			}
			if s.iBatch < 0 {
				continue // prompt not finished yet
			}
			if s.generating() && s.usage.CompletionTokens > 0 {
				s.cache = append(s.cache, s.last) // the token fed this step
			}
			tok, err := m.sample(s, &cands)
			if err != nil {
				m.release(s, "", err)
				continue
			}
			generated++
			s.usage.CompletionTokens++
			if s.usage.CompletionTokens == 1 {
				m.stats.observeTTFT(time.Since(s.job.enqueued))
			}
			if llama.VocabIsEOG(m.vocab, tok) {
				m.release(s, FinishStop, nil)
				continue
			}
			n := llama.TokenToPiece(m.vocab, tok, piece, 0, false)
			if n < 0 { // the piece needs -n bytes
				piece = make([]byte, -n)
				n = llama.TokenToPiece(m.vocab, tok, piece, 0, false)
			}
			text, stopped := s.job.out.push(piece[:max(n, 0)])
			s.job.emit(text)
			switch {
			case stopped:
				m.release(s, FinishStop, nil)
			case s.usage.CompletionTokens >= s.job.maxTokens || len(s.cache) >= m.window:
				m.release(s, FinishLength, nil)
			default:
				s.last = tok
			}
		}
		if generated > 0 {
			m.stats.observeTokens(generated)
		}
	}
}

func (m *Model) busy(slots []*slot) int {
	n := 0
	for _, s := range slots {
		if s.job != nil {
			n++
		}
	}
	return n
}

// admit puts a queued request into the free slot whose cached tokens
// share the longest prefix with its prompt, and drops the rest of that
// slot's KV.
func (m *Model) admit(mem llama.Memory, slots []*slot, j *job) {
	if err := j.ctx.Err(); err != nil {
		j.freeSampler()
		j.end("", err, Usage{})
		return
	}
	var best *slot
	bestN := -1
	for _, s := range slots {
		if s.job != nil {
			continue
		}
		n := 0
		if !j.embed {
			n = commonPrefix(s.cache, j.prompt)
		}
		if n > bestN {
			best, bestN = s, n
		}
	}
	if best == nil {
		panic("localengine: admit without a free slot") // run checks first
	}
	s := best
	if bestN == len(j.prompt) {
		bestN-- // the last prompt token is decoded again for its logits
	}
	if m.recurrent {
		bestN = 0 // a recurrent state cannot be cut back to a prefix
	}
	if ok, err := llama.MemorySeqRm(mem, s.seq, llama.Pos(bestN), -1); !ok || err != nil {
		// The memory could not drop the tail: start the sequence afresh.
		bestN = 0
		_, _ = llama.MemorySeqRm(mem, s.seq, -1, -1)
	}
	s.cache = s.cache[:bestN]
	s.nPast = bestN
	s.job = j
	s.usage = Usage{PromptTokens: len(j.prompt), CachedTokens: bestN}
	s.start = time.Now()
	s.smpl.free()
	s.smpl, j.smpl = j.smpl, samplers{}
}

// release ends a slot's request; the slot is free for the next one at
// once, its KV kept for prefix reuse.
func (m *Model) release(s *slot, finish string, err error) {
	if err == nil && !s.job.embed {
		s.job.emit(s.job.out.flush())
	}
	if s.job.embed {
		s.usage.CachedTokens = 0
	}
	s.job.end(finish, err, s.usage)
	s.job = nil
}

func (m *Model) finishEmbedding(mem llama.Memory, s *slot) {
	emb, err := llama.GetEmbeddingsSeq(m.lctx, s.seq, m.nEmbd)
	if err == nil && emb == nil {
		err = errors.New("local engine: no embedding for the sequence")
	}
	if err == nil {
		s.job.mu.Lock()
		s.job.embedding = append([]float32(nil), emb...)
		s.job.mu.Unlock()
	}
	// Embedding sequences are not cached: pooling needs the whole input.
	_, _ = llama.MemorySeqRm(mem, s.seq, -1, -1)
	s.cache = s.cache[:0]
	m.release(s, FinishStop, err)
}

func (m *Model) failAll(slots []*slot, err error) {
	for _, s := range slots {
		if s.job != nil {
			m.release(s, "", err)
		}
	}
}

func commonPrefix(a, b []llama.Token) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// ErrGrammar is a grammar llama.cpp could not parse.
var ErrGrammar = errors.New("local engine: llama.cpp rejected the grammar")

// errNoToken is a grammar that allows no token of the vocabulary where
// the generation stands.
var errNoToken = errors.New("local engine: the grammar allows no token here")

// samplers are a request's sampler chain and, for a constrained request,
// its grammar, kept apart as llama.cpp's own server keeps them (see
// Model.sample).
type samplers struct {
	chain   llama.Sampler
	grammar llama.Sampler
}

func (s *samplers) free() {
	if s.chain != 0 {
		llama.SamplerFree(s.chain)
	}
	if s.grammar != 0 {
		llama.SamplerFree(s.grammar)
	}
	*s = samplers{}
}

// newSampler builds a request's samplers: the chain (penalties, then
// greedy at temperature 0, else top-k, top-p, min-p, temperature and a
// seeded draw) and the grammar's when there is one. It only allocates,
// so it may run outside the scheduler (with the model held open).
func newSampler(vocab llama.Vocab, p Sampling, grammar string) (samplers, error) {
	var out samplers
	if grammar != "" {
		if strings.IndexByte(grammar, 0) >= 0 {
			return out, ErrGrammar
		}
		if out.grammar = llama.SamplerInitGrammar(vocab, grammar, "root"); out.grammar == 0 {
			return out, ErrGrammar
		}
	}
	out.chain = newChain(p)
	return out, nil
}

func newChain(p Sampling) llama.Sampler {
	chain := llama.SamplerChainInit(llama.SamplerChainDefaultParams())
	if p.RepeatPenalty != 1 && p.RepeatPenalty != 0 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0 {
		repeat := p.RepeatPenalty
		if repeat == 0 {
			repeat = 1
		}
		lastN := p.RepeatLastN
		if lastN == 0 {
			lastN = 64
		}
		llama.SamplerChainAdd(chain, llama.SamplerInitPenalties(0, lastN, repeat, p.FrequencyPenalty, p.PresencePenalty))
	}
	if p.Temperature <= 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitGreedy())
		return chain
	}
	if p.TopK > 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitTopK(p.TopK))
	}
	if p.TopP > 0 && p.TopP < 1 {
		llama.SamplerChainAdd(chain, llama.SamplerInitTopP(p.TopP, 1))
	}
	if p.MinP > 0 {
		llama.SamplerChainAdd(chain, llama.SamplerInitMinP(p.MinP, 1))
	}
	llama.SamplerChainAdd(chain, llama.SamplerInitTemp(p.Temperature))
	llama.SamplerChainAdd(chain, llama.SamplerInitDist(p.Seed))
	return chain
}

// sample picks a slot's next token from its logits at its batch index.
// With a grammar it does what llama-server does: sample without the
// grammar, keep the token if the grammar allows it, and only otherwise
// apply the grammar to the whole vocabulary and sample again. Applying
// it to every token each step costs 15 to 18 ms per token for a 152k
// vocabulary on one core; checking one token costs next to nothing. A
// token is never accepted by a grammar that does not allow it (llama.cpp
// aborts the process then).
func (m *Model) sample(s *slot, cands *[]llama.TokenData) (llama.Token, error) {
	if s.smpl.grammar == 0 {
		return llama.SamplerSample(s.smpl.chain, m.lctx, s.iBatch), nil
	}
	logits, err := llama.GetLogitsIth(m.lctx, s.iBatch, int(m.nVocab))
	if err != nil || logits == nil {
		return 0, fmt.Errorf("local engine: no logits to sample: %v", err)
	}
	c := *cands
	if cap(c) < len(logits) {
		c = make([]llama.TokenData, len(logits))
		*cands = c
	}
	c = c[:len(logits)]
	pick := func(grammar bool) (llama.Token, bool) {
		for i, l := range logits {
			c[i] = llama.TokenData{Id: llama.Token(i), Logit: l}
		}
		arr := llama.TokenDataArray{Data: &c[0], Size: uint64(len(c)), Selected: -1}
		if grammar {
			llama.SamplerApply(s.smpl.grammar, &arr)
		}
		llama.SamplerApply(s.smpl.chain, &arr)
		if arr.Data == nil || arr.Selected < 0 || uint64(arr.Selected) >= arr.Size {
			return 0, false
		}
		// The samplers sort and cut the array in place; read it through
		// the array, wherever its data now is.
		sel := unsafe.Slice(arr.Data, arr.Size)[arr.Selected]
		if math.IsInf(float64(sel.Logit), -1) {
			return 0, false
		}
		return sel.Id, true
	}
	tok, ok := pick(false)
	if ok {
		one := llama.TokenData{Id: tok, Logit: 1}
		single := llama.TokenDataArray{Data: &one, Size: 1, Selected: -1}
		llama.SamplerApply(s.smpl.grammar, &single)
		ok = !math.IsInf(float64(one.Logit), -1)
	}
	if !ok {
		if tok, ok = pick(true); !ok {
			return 0, errNoToken
		}
	}
	llama.SamplerAccept(s.smpl.grammar, tok)
	llama.SamplerAccept(s.smpl.chain, tok)
	return tok, nil
}
