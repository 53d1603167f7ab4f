package policies

import (
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/require"
)

// TestDecodeMatchesJSON holds the hand-written decoder to encoding/json's
// reading of the same result, for well-formed and odd decisions.
func TestDecodeMatchesJSON(t *testing.T) {
	for _, src := range []string{
		`{"allow": true, "deny": [], "routes": ["a/x", "b/y"], "excluded": {"c/z": [{"code": "LOCAL_ONLY", "message": "m"}, {"code": "COST_CAP", "message": "n"}]}, "redact": {"proprietary": ["EMAIL"]}, "obligations": {"max_output_tokens": 512, "audit_level": "full"}}`,
		`{"allow": false, "deny": [{"code": "MODEL_NOT_ALLOWED", "message": "no", "extra": 1}], "routes": [], "excluded": {}, "redact": {"proprietary": []}, "obligations": {}}`,
		`{"allow": null, "deny": null, "routes": null, "excluded": null, "redact": null, "obligations": null, "other": [1, 2]}`,
		`{}`,
		`{"deny": {{"code": "A", "message": "a"}, {"code": "B", "message": "b"}}, "redact": {"proprietary": {"IBAN", "EMAIL"}}}`,
	} {
		v := ast.MustParseTerm(src).Value
		got, err := decodeDecision(v)
		require.NoError(t, err, src)
		j, err := ast.JSON(v)
		require.NoError(t, err)
		raw, err := json.Marshal(j)
		require.NoError(t, err)
		want := &Decision{}
		require.NoError(t, json.Unmarshal(raw, want))
		require.Equal(t, want, got, src)
	}
}

func TestDecodeRefusesWrongTypes(t *testing.T) {
	for src, path := range map[string]string{
		`[]`:                                  "decision: want an object",
		`{"allow": "yes"}`:                    "allow: want a boolean",
		`{"routes": "a/x"}`:                   "routes: want an array",
		`{"routes": [1]}`:                     "routes[0]: want a string",
		`{"deny": [{"code": 7}]}`:             "deny[0].code: want a string",
		`{"excluded": {"a/x": "LOCAL_ONLY"}}`: "excluded.a/x: want an array",
		`{"obligations": {"max_output_tokens": 1.5}}`: "obligations.max_output_tokens: 1.5 is not an integer",
		`{"redact": {"proprietary": [true]}}`:         "redact.proprietary[0]: want a string",
	} {
		_, err := decodeDecision(ast.MustParseTerm(src).Value)
		require.ErrorContains(t, err, path, src)
	}
}
