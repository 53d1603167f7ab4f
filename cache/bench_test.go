package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cache"
)

// The cache's in-process costs, as docs/benchmarks.md ("Response cache")
// reports them: an exact hit (the key of a realistic chat request and the
// store's lookup among 10,000 entries), a semantic lookup without the
// embedding (1,000 vectors of 384 dimensions in the request's partition),
// and the heap 10,000 entries hold.

// benchSystem is a realistic system prompt (~600 bytes).
const benchSystem = "You are the support assistant of Example Corp, a company that sells accounting software " +
	"to small businesses. Answer in the customer's language, in at most three short paragraphs. Never invent " +
	"prices, dates or features: when you do not know, say so and offer to open a ticket. Do not give legal or " +
	"tax advice; point to an accountant instead. Format lists with hyphens, code and file names in backticks. " +
	"The customer is on the Business plan, in the EU, and their account was created in 2023. Be friendly but " +
	"brief, and end every answer with one question that moves the conversation forward."

// benchBody is a chat request of a system prompt and five turns (~1.5 KB)
// whose last user question is last.
func benchBody(last string) []byte {
	msgs := []map[string]any{
		{"role": "system", "content": benchSystem},
		{"role": "user", "content": "Hi, I can't export my invoices to PDF since this morning. The button is greyed out."},
		{"role": "assistant", "content": "Sorry about that! The export is disabled while an invoice is still a draft. " +
			"Could you check whether the invoices you want to export are finalised (status \"Sent\" or \"Paid\")?"},
		{"role": "user", "content": "They are all marked as Sent. I also tried another browser, same thing."},
		{"role": "assistant", "content": "Thanks for checking. Then it may be the export permission of your user role: " +
			"only Owners and Accountants may export. Which role does your user have under Settings → Team?"},
		{"role": "user", "content": last},
	}
	b, err := json.Marshal(map[string]any{"model": "support-chat", "messages": msgs, "temperature": 0.2,
		"max_tokens": 512, "stream": false, "user": "customer-4711"})
	if err != nil {
		panic(err)
	}
	return b
}

// benchAnswer is a ~1 KB chat completion.
func benchAnswer(i int) json.RawMessage {
	content := fmt.Sprintf("Answer %d. ", i) + strings.Repeat("Owners and Accountants can export invoices; ask your Owner to change your role. ", 10)
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-x",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content, "refusal": nil},
			"logprobs": nil, "finish_reason": "stop"}},
		"usage": map[string]any{"prompt_tokens": 380, "completion_tokens": 160, "total_tokens": 540}})
	return b
}

func benchRequest(body []byte) cache.Request {
	return cache.Request{Tenant: "acme", Revision: "0123456789abcdef", Operation: "chat", Route: "support-chat", Body: body}
}

// benchQuestion is the i-th stored question.
func benchQuestion(i int) string {
	return fmt.Sprintf("I am an Accountant, and it still does not work. What else can I try? (case %d)", i)
}

func benchEntry(key string, answer json.RawMessage) *cache.Entry {
	return &cache.Entry{Key: key, Tenant: "acme", Route: "support-chat", Revision: "0123456789abcdef",
		RouteSet: "openai/gpt-x\x1fedge/llama", Answer: answer, PromptTokens: 380, CompletionTokens: 160,
		CostPicoUSD: 123_000_000, Backend: "openai", Kind: "proprietary", UpstreamModel: "gpt-x", Created: time.Now().UTC()}
}

func benchRandVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// benchTimed runs one per iteration, timing each, and reports the median
// and the 99th percentile in µs beside the mean.
func benchTimed(b *testing.B, one func()) {
	b.ReportAllocs()
	lat := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t := time.Now()
		one()
		lat = append(lat, time.Since(t))
	}
	// After the loop: b.Loop resets the reported metrics.
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkExactHit is the in-process work of an exact hit: the exact key
// of a ~1.5 KB chat request, then Cache.Get on a Memory store of 10,000
// entries (key+get, with its median and 99th percentile); and each half
// alone.
func BenchmarkExactHit(b *testing.B) {
	ctx := context.Background()
	const n = 10_000
	c := cache.New(cache.Options{Local: cache.NewMemory(cache.MemoryOptions{MaxEntries: n})})
	answer := benchAnswer(0)
	var keys []string
	for i := range n {
		key, err := cache.ExactKey(benchRequest(benchBody(benchQuestion(i))))
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, key)
		if _, err := c.Put(ctx, benchEntry(key, answer)); err != nil {
			b.Fatal(err)
		}
	}
	body := benchBody(benchQuestion(n / 2))
	b.Logf("request body: %d bytes", len(body))
	b.Run("key+get", func(b *testing.B) {
		benchTimed(b, func() {
			key, err := cache.ExactKey(benchRequest(body))
			if err != nil {
				b.Fatal(err)
			}
			if e, _ := c.Get(ctx, key); e == nil {
				b.Fatal("miss")
			}
		})
	})
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.ExactKey(benchRequest(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if e, _ := c.Get(ctx, keys[i%n]); e == nil {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkSemanticLookup is the in-process work of a semantic hit
// without the embedding: SemanticLookup (the lookup text and partition)
// and Cache.Nearest in a partition of 1,000 vectors of 384 dimensions
// (lookup+nearest); Cache.Nearest alone (nearest); and, before them, the
// exact miss every semantic lookup starts with
// (exact-miss+lookup+nearest).
func BenchmarkSemanticLookup(b *testing.B) {
	ctx := context.Background()
	const n, dim = 1000, 384
	rng := rand.New(rand.NewSource(1))
	c := cache.New(cache.Options{Local: cache.NewMemory(cache.MemoryOptions{MaxEntries: 10_000}), Index: cache.NewIndex(cache.IndexOptions{})})
	answer := benchAnswer(0)
	vecs := make([][]float32, n)
	var partition string
	for i := range n {
		r := benchRequest(benchBody(benchQuestion(i)))
		key, err := cache.ExactKey(r)
		if err != nil {
			b.Fatal(err)
		}
		l, ok := cache.SemanticLookup(r)
		if !ok || (partition != "" && l.Partition != partition) {
			b.Fatal("not one partition")
		}
		partition = l.Partition
		vecs[i] = benchRandVec(rng, dim)
		e := benchEntry(key, answer)
		e.Partition, e.Vector = l.Partition, vecs[i]
		if _, err := c.Put(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	// A paraphrase of stored question 500: another exact key, the same
	// partition, a vector near the stored one.
	body := benchBody("I'm an Accountant and it still doesn't work, what else can I try?")
	query := make([]float32, dim)
	for i, x := range vecs[500] {
		query[i] = x + 0.1*float32(rng.NormFloat64())
	}
	check := func(b *testing.B, e *cache.Entry, sim float32) {
		if e == nil || sim < 0.95 {
			b.Fatalf("no semantic hit (similarity %v)", sim)
		}
	}
	b.Run("lookup+nearest", func(b *testing.B) {
		benchTimed(b, func() {
			l, ok := cache.SemanticLookup(benchRequest(body))
			if !ok {
				b.Fatal("no lookup")
			}
			e, sim, err := c.Nearest(ctx, l.Partition, query)
			if err != nil {
				b.Fatal(err)
			}
			check(b, e, sim)
		})
	})
	b.Run("nearest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, sim, err := c.Nearest(ctx, partition, query)
			if err != nil {
				b.Fatal(err)
			}
			check(b, e, sim)
		}
	})
	b.Run("exact-miss+lookup+nearest", func(b *testing.B) {
		benchTimed(b, func() {
			r := benchRequest(body)
			key, err := cache.ExactKey(r)
			if err != nil {
				b.Fatal(err)
			}
			if e, _ := c.Get(ctx, key); e != nil {
				b.Fatal("exact hit")
			}
			l, ok := cache.SemanticLookup(r)
			if !ok {
				b.Fatal("no lookup")
			}
			e, sim, err := c.Nearest(ctx, l.Partition, query)
			if err != nil {
				b.Fatal(err)
			}
			check(b, e, sim)
		})
	})
}

// BenchmarkCacheMemory reports the heap a Cache holds with 10,000
// entries of a ~1 KB answer each: exact only (the Memory store), and
// semantic (each entry also holding a 384-dimension vector, and the Index
// its normalised copy; 100 partitions of 100). Every entry's answer and
// vector are allocated as the gateway does (one copy each). Run it with
// -benchtime 1x: a Memory is never freed (its expiry goroutine, in
// hashicorp/golang-lru's expirable LRU, runs for ever), so every
// iteration's cache stays on the heap.
func BenchmarkCacheMemory(b *testing.B) {
	ctx := context.Background()
	const n, dim = 10_000, 384
	template := benchAnswer(0)
	for _, semantic := range []bool{false, true} {
		name := "exact"
		if semantic {
			name = "semantic"
		}
		b.Run(name, func(b *testing.B) {
			var heap int64
			for b.Loop() {
				rng := rand.New(rand.NewSource(1))
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				o := cache.Options{Local: cache.NewMemory(cache.MemoryOptions{MaxEntries: n})}
				if semantic {
					o.Index = cache.NewIndex(cache.IndexOptions{MaxVectors: n})
				}
				c := cache.New(o)
				for i := range n {
					e := benchEntry(fmt.Sprintf("%064x", i), append(json.RawMessage(nil), template...)) // keys like hex digests
					if semantic {
						e.Partition, e.Vector = fmt.Sprintf("%064x", i%100), benchRandVec(rng, dim)
					}
					if _, err := c.Put(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
				runtime.KeepAlive(c)
			}
			// After the loop: b.Loop resets the reported metrics.
			b.ReportMetric(float64(heap), "heap-bytes/10k-entries")
			b.ReportMetric(float64(heap)/n, "heap-bytes/entry")
			b.ReportMetric(float64(heap)/n-float64(len(template)), "overhead-bytes/entry")
		})
	}
}
