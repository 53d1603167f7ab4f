package policies

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/classify"
)

func benchInput() *Input {
	return &Input{
		Subject: Subject{Tenant: "eu-bank", Team: "finance"},
		Request: Request{Model: "default", Entities: map[string]int{"EMAIL": 1}, LatencySLOMs: 2000},
		Candidates: append(candidates(),
			Candidate{ID: "local/llama", Kind: "local", Jurisdiction: "EU", Healthy: true, P95LatencyMs: 900},
			Candidate{ID: "azure/gpt-4o-mini", Kind: "proprietary", Jurisdiction: "EU", Healthy: true, EstCostUSD: 0.003, ZeroDataRetention: true}),
	}
}

// BenchmarkDecideCached is a decision reused from the cache: what a
// request with the same coarse facts as an earlier one pays.
func BenchmarkDecideCached(b *testing.B) {
	e, err := New(context.Background(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	ctx := context.Background()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d, err := e.Decide(ctx, in); err != nil || !d.Reused {
			b.Fatal(err, "not reused")
		}
	}
}

// BenchmarkDecide is one full policy evaluation on the shipped bundle with
// four candidates, the input converted per call: the cold cost, when the
// decision is not in the cache.
func BenchmarkDecide(b *testing.B) {
	e, err := New(context.Background(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	ctx := context.Background()
	c := e.cur.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.evaluate(ctx, c, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullDecision is what the gateway pays per request before it
// routes: classification of a 1.2 KB chat body, then a decision, either
// never in the cache (each iteration's costs differ) or reused. It
// reports the p50 and p99 of the per-decision latency.
func BenchmarkFullDecision(b *testing.B) {
	b.Run("evaluated", func(b *testing.B) { benchFullDecision(b, false) })
	b.Run("cached", func(b *testing.B) { benchFullDecision(b, true) })
}

func benchFullDecision(b *testing.B, cached bool) {
	e, err := New(context.Background(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := classify.New()
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"model":"default","messages":[{"role":"system","content":"You are a helpful assistant for the accounts team. Answer briefly and cite the policy section when you can."},{"role":"user","content":"` +
		strings.Repeat("Please summarise the attached note about quarterly invoices and reconcile the totals. ", 11) +
		`Reply to jane.doe@example.com when done."}]}`)
	ctx := context.Background()
	var lat []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		f := cl.ScanRequest(body)
		in := benchInput()
		in.Request.Entities = f.Counts()
		if !cached {
			in.Candidates[0].EstCostUSD = float64(i) * 1e-7 // a new cache key
		}
		d, err := e.Decide(ctx, in)
		if err != nil || (d.Reused != cached && i > 1) {
			b.Fatal(err, "reused:", d.Reused)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
