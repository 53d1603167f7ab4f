package policies

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestInputMatchesSchema keeps the Go contract and the JSON Schema the
// policies are type-checked against in step: same objects, same fields.
func TestInputMatchesSchema(t *testing.T) {
	f, i := 1.0, int64(1)
	in := Input{
		Request:    Request{Entities: map[string]int{}},
		Budget:     Budget{KeyRemainingUSD: &f, TeamRemainingUSD: &f, KeyRemainingTokens: &i, TeamRemainingTokens: &i},
		Candidates: []Candidate{{}},
	}
	raw, err := json.Marshal(in)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))

	var schema map[string]any
	require.NoError(t, json.Unmarshal(inputSchemaJSON, &schema))
	props := schema["properties"].(map[string]any)
	assert.Equal(t, keys(props), keys(doc))
	for _, obj := range []string{"request", "subject", "budget"} {
		s := props[obj].(map[string]any)["properties"].(map[string]any)
		assert.Equal(t, keys(s), keys(doc[obj].(map[string]any)), obj)
	}
	items := props["candidates"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, keys(items), keys(doc["candidates"].([]any)[0].(map[string]any)), "candidates")

	// The shipped example is a valid input for the Go type, field for field.
	ex, err := os.ReadFile("examples/card-number.json")
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(ex))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&Input{}))
}

func TestDecisionMatchesSchema(t *testing.T) {
	raw, err := os.ReadFile("schema/decision.json")
	require.NoError(t, err)
	var schema map[string]any
	require.NoError(t, json.Unmarshal(raw, &schema))
	d, err := json.Marshal(Decision{Obligations: Obligations{MaxOutputTokens: 1, AuditLevel: "full"}})
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(d, &doc))
	delete(doc, "revision") // added by the gateway, not the policy
	assert.Equal(t, keys(schema["properties"].(map[string]any)), keys(doc))
}
