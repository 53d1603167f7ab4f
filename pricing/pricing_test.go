package pricing

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCost(t *testing.T) {
	gpt4oMini := FromUSDPerMTok(0.15, 0.60, 0.075)
	for _, tc := range []struct {
		name                       string
		p                          Price
		prompt, cached, completion int64
		want                       string
	}{
		{"plain", gpt4oMini, 1000, 0, 500, "0.00045"},
		{"cached at the cached rate", gpt4oMini, 1000, 400, 500, "0.00042"},
		{"cached clamped to prompt", gpt4oMini, 100, 400, 0, "0.0000075"},
		{"free local model", Price{}, 100000, 0, 100000, "0"},
		{"one token", FromUSDPerMTok(0.0375, 0, 0), 1, 0, 0, "0.0000000375"},
		{"big", FromUSDPerMTok(15, 75, 1.5), 1_000_000, 0, 1_000_000, "90"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.p.Cost(tc.prompt, tc.cached, tc.completion).String())
		})
	}
}

func TestCostUSD(t *testing.T) {
	assert.InDelta(t, 0.00045, FromUSDPerMTok(0.15, 0.6, 0).Cost(1000, 0, 500).USD(), 1e-15)
	assert.Equal(t, "-0.5", Cost(-5e11).String())
}
