package ledger

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchEntry is a typical settled request.
func benchEntry(i int) Entry {
	return Entry{Time: time.Now().UTC(), RequestID: "req-" + strconv.Itoa(i), DecisionID: "dec-" + strconv.Itoa(i),
		Tenant: "acme", Team: "search", KeyID: "key-1", Model: "gpt-4o", Backend: "openai-east", Kind: "openai",
		Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06", PromptTokens: 1200, CompletionTokens: 300,
		CachedTokens: 1024, CostPicoUSD: 5_250_000_000, SavingsPicoUSD: 1_000_000_000}
}

func benchAppend(b *testing.B, s Store) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := s.Append(ctx, benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryAppend(b *testing.B) {
	benchAppend(b, NewMemory(time.Hour, nil))
}

func BenchmarkRedisAppend(b *testing.B) {
	c := redisClient(b, redisAddr(b))
	benchAppend(b, NewRedis(c, testPrefix(b, c), 24*time.Hour))
}
