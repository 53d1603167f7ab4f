package pricing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		model string
		want  string // the key whose price it gets, "" for none
	}{
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"gpt-4.1-nano", "gpt-4.1-nano"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"claude-sonnet-4-20250514", "claude-sonnet-4"},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"},
		{"anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"},
		{"models/gemini-2.5-flash-lite", "gemini-2.5-flash-lite"},
		{"gemini-2.5-flash", "gemini-2.5-flash"},
		{"mistral-large-latest", "mistral-large"},
		{"llama3.2", ""},
		{"my-finetune", ""},
	} {
		got, ok := Lookup(tc.model)
		require.Equal(t, tc.want != "", ok, tc.model)
		if ok {
			require.Equal(t, Defaults[tc.want], got, tc.model)
		}
	}
}

// Every default is sane: output dearer than or equal to input for chat
// models, cache reads never dearer than input.
func TestDefaultsAreSane(t *testing.T) {
	for k, p := range Defaults {
		require.Positive(t, p.Input, k)
		require.LessOrEqual(t, p.CachedInput, p.Input, k)
		require.GreaterOrEqual(t, p.CacheWrite, p.Input, k)
	}
}
