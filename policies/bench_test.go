package policies

import (
	"context"
	"testing"
)

// BenchmarkDecide is one full policy evaluation on the shipped bundle with
// four candidates, the input converted per call: the cold cost, before any
// decision caching.
func BenchmarkDecide(b *testing.B) {
	e, err := New(context.Background(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{
		Subject: Subject{Tenant: "eu-bank", Team: "finance"},
		Request: Request{Model: "default", Entities: map[string]int{"EMAIL": 1}, LatencySLOMs: 2000},
		Candidates: append(candidates(),
			Candidate{ID: "local/llama", Kind: "local", Jurisdiction: "EU", Healthy: true, P95LatencyMs: 900},
			Candidate{ID: "azure/gpt-4o-mini", Kind: "proprietary", Jurisdiction: "EU", Healthy: true, EstCostUSD: 0.003, ZeroDataRetention: true}),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
