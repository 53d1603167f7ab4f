package policies

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/require"
)

func TestInputValueMatchesJSON(t *testing.T) {
	f, i := 12.5, int64(900)
	for _, in := range []*Input{
		{},
		benchInput(),
		{
			Request:    Request{ID: "r", Operation: "chat", Model: "m", Stream: true, EstimatedInputTokens: 120, MaxOutputTokens: 64, DataClass: "internal", Entities: map[string]int{"EMAIL": 2, "IBAN": 1}, WeakEntities: map[string]int{"US_SSN": 1, "CREDIT_CARD": 2}, Categories: map[string]string{"EMAIL": "pii", "IBAN": "pii", "US_SSN": "pii", "CREDIT_CARD": "pii"}, OriginRegion: "eu", LatencySLOMs: 700},
			Subject:    Subject{Tenant: "t", Team: "tm", User: "u", KeyID: "k"},
			Budget:     Budget{KeyRemainingUSD: &f, TeamRemainingTokens: &i},
			Candidates: []Candidate{{ID: "a/b", Backend: "a", Provider: "openai", Kind: "local", Region: "r", Jurisdiction: "EU", Healthy: true, P95LatencyMs: 0.12, TTFTMs: 33, EstCostUSD: 0.00042, ContextWindow: 8192, ZeroDataRetention: true}},
		},
	} {
		want, err := ast.InterfaceToValue(in)
		require.NoError(t, err)
		got := inputValue(in)
		require.Equal(t, 0, want.Compare(got), "\nwant %v\ngot  %v", want, got)
	}
}
