package localengine

import (
	"errors"
	"fmt"
	"time"

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
	smpl   llama.Sampler
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
	defer func() {
		for _, s := range slots {
			if s.job != nil {
				s.job.end("", ErrClosed, s.usage)
			}
			if s.smpl != 0 {
				llama.SamplerFree(s.smpl)
			}
		}
		for {
			select {
			case j := <-m.jobs:
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
		for _, s := range slots {
			if s.job != nil && s.job.ctx.Err() != nil {
				m.release(s, "", s.job.ctx.Err())
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
			tok := llama.SamplerSample(s.smpl, m.lctx, s.iBatch)
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
	if s.smpl != 0 {
		llama.SamplerFree(s.smpl)
		s.smpl = 0
	}
	if !j.embed {
		s.smpl = newSampler(j.sampling)
	}
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

// newSampler builds a request's sampler chain: penalties, then greedy at
// temperature 0, else top-k, top-p, min-p, temperature and a seeded draw.
func newSampler(p Sampling) llama.Sampler {
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
