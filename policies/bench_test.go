package policies

import (
	"context"
	"testing"
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
