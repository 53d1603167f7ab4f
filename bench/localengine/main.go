// Command localengine measures the embedded engine's generation speed:
// N concurrent greedy streams of a fixed number of tokens each, decoded
// together by one scheduler, reporting aggregate tokens per second, mean
// time to first token and peak RSS as one JSON line per N. bench/nodellama
// measures llama.cpp's own batched path on the same model and libraries
// with the same prompts, for the ratio recorded in docs/benchmarks.md.
//
//	go run ./bench/localengine -model .llama/models/bench-q4km.gguf -streams 1,4,8
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/localengine"
)

type result struct {
	Engine       string  `json:"engine"`
	Streams      int     `json:"streams"`
	Threads      int     `json:"threads"`
	Tokens       int     `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_second"`
	TTFTMeanMs   float64 `json:"ttft_ms_mean"`
	MaxRSSMB     float64 `json:"max_rss_mb"`
}

func main() {
	model := flag.String("model", ".llama/models/bench-q4km.gguf", "GGUF model")
	lib := flag.String("lib", "", "llama.cpp library directory (default $SWITCHYARD_LLAMA_LIB, else .llama/lib)")
	streams := flag.String("streams", "1,4,8", "comma-separated stream counts")
	tokens := flag.Int("tokens", 128, "tokens generated per stream")
	threads := flag.Int("threads", 1, "decode threads")
	ctxSize := flag.Int("context", 512, "context window per stream")
	batch := flag.Int("batch", 512, "tokens per decode step")
	gpuLayers := flag.Int("gpu-layers", 0, "layers offloaded to a GPU (-1: all)")
	flag.Parse()

	rt, err := localengine.Open(*lib)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("bad stream count %q", f)
		}
		m, err := rt.Load(localengine.Spec{Name: "bench", Path: *model, Context: *ctxSize, Slots: n, Batch: *batch, Threads: *threads, GPULayers: *gpuLayers})
		if err != nil {
			log.Fatal(err)
		}
		run(m, 1, 8, "warm up") // first decode pays for buffer allocation
		r := run(m, n, *tokens, "")
		r.Threads = *threads
		m.Close()
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
	}
}

// run generates n streams of max tokens each, concurrently.
func run(m *localengine.Model, n, max int, label string) result {
	greedy := localengine.Sampling{Temperature: 0, RepeatPenalty: 1}
	ttft := make([]time.Duration, n)
	counts := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			prompt := fmt.Sprintf("prompt number %d: the quick brown fox", i)
			if label != "" {
				prompt = label
			}
			g, err := m.Generate(context.Background(), localengine.Request{Prompt: prompt, MaxTokens: max, Sampling: greedy})
			if err != nil {
				log.Fatal(err)
			}
			for {
				_, err := g.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					log.Fatal(err)
				}
				if ttft[i] == 0 {
					ttft[i] = time.Since(t0)
				}
			}
			_, u := g.Result()
			counts[i] = u.CompletionTokens
		}()
	}
	wg.Wait()
	el := time.Since(start)
	total := 0
	var sum time.Duration
	for i := range n {
		total += counts[i]
		sum += ttft[i]
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return result{
		Engine: "switchyard localengine", Streams: n, Tokens: total, Seconds: el.Seconds(),
		TokensPerSec: float64(total) / el.Seconds(), TTFTMeanMs: float64(sum) / float64(n) / 1e6,
		MaxRSSMB: float64(ru.Maxrss) / 1024,
	}
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }
