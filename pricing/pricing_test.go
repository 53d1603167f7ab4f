package pricing

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCost(t *testing.T) {
	gpt4oMini := FromUSDPerMTok(0.15, 0.60, 0.075, 0.15)
	sonnet := FromUSDPerMTok(3, 15, 0.30, 3.75)
	for _, tc := range []struct {
		name string
		p    Price
		t    Tokens
		want string
	}{
		{"plain", gpt4oMini, Tokens{Prompt: 1000, Completion: 500}, "0.00045"},
		{"cached at the cached rate", gpt4oMini, Tokens{Prompt: 1000, Cached: 400, Completion: 500}, "0.00042"},
		{"cached clamped to prompt", gpt4oMini, Tokens{Prompt: 100, Cached: 400}, "0.0000075"},
		// 1000 prompt = 200 read (0.3) + 300 written (3.75) + 500 plain (3); 100 out (15): 60 + 1125 + 1500 + 1500 micro-USD.
		{"cache read and write", sonnet, Tokens{Prompt: 1000, Cached: 200, CacheWrite: 300, Completion: 100}, "0.004185"},
		{"write clamped to what the read left", sonnet, Tokens{Prompt: 100, Cached: 60, CacheWrite: 100}, "0.000168"},
		{"negative counts bill nothing", sonnet, Tokens{Prompt: -5, Cached: -1, CacheWrite: -1, Completion: -3}, "0"},
		{"free local model", Price{}, Tokens{Prompt: 100000, Completion: 100000}, "0"},
		{"one token", FromUSDPerMTok(0.0375, 0, 0, 0), Tokens{Prompt: 1}, "0.0000000375"},
		{"big", FromUSDPerMTok(15, 75, 1.5, 18.75), Tokens{Prompt: 1_000_000, Completion: 1_000_000}, "90"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.p.Cost(tc.t).String())
		})
	}
}

func TestCostUSD(t *testing.T) {
	assert.InDelta(t, 0.00045, FromUSDPerMTok(0.15, 0.6, 0, 0).Cost(Tokens{Prompt: 1000, Completion: 500}).USD(), 1e-15)
	assert.Equal(t, "-0.5", Cost(-5e11).String())
}
