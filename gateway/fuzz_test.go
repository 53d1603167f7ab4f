package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/providers"
)

// fuzzLimits are small enough for fuzzed inputs to reach them.
var fuzzLimits = jsonLimits{maxDepth: 16, maxStringBytes: 64, maxItems: 16}

// seedBodies are the bodies of the test tables.
func seedBodies() []string {
	var out []string
	for _, tc := range jsonCases {
		if len(tc.body) <= 4096 {
			out = append(out, tc.body)
		}
	}
	for _, tc := range append(append([]paramCase(nil), badParams...), goodParams...) {
		out = append(out, tc.body)
	}
	return out
}

// FuzzJSONLimits: the checker never panics; where it finds no limit
// passed, it judges syntax as encoding/json.Valid does; a repeated key it
// reports in valid JSON is one encoding/json decodes twice in one object
// (it stops at the first violation, so a repeated key may come before a
// syntax error); a depth or item limit it reports is one the body passes.
func FuzzJSONLimits(f *testing.F) {
	for _, b := range seedBodies() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := checkJSON(b, fuzzLimits)
		valid := json.Valid(b)
		switch v.problem {
		case jsonOK:
			require.True(t, valid, "accepted what encoding/json refuses")
		case jsonSyntax:
			require.False(t, valid, "refused at %d what encoding/json accepts", v.offset)
		}
		require.GreaterOrEqual(t, v.offset, 0)
		require.LessOrEqual(t, v.offset, len(b))
		if !valid {
			return
		}
		st, err := referenceScan(b)
		if err != nil {
			return // encoding/json's own nesting bound
		}
		switch v.problem {
		case jsonOK:
			require.False(t, st.dup, "missed the repeated key %q", st.dupKey)
			require.LessOrEqual(t, st.depth, fuzzLimits.maxDepth)
			require.LessOrEqual(t, st.items, fuzzLimits.maxItems)
		case jsonDuplicateKey:
			require.True(t, st.dup, "reported %q, which encoding/json does not see twice", v.key)
		case jsonTooDeep:
			require.Greater(t, st.depth, fuzzLimits.maxDepth)
		case jsonTooManyItems:
			require.Greater(t, st.items, fuzzLimits.maxItems)
		}
	})
}

var fuzzOps = []providers.Operation{providers.OpChat, providers.OpCompletion, providers.OpEmbeddings}

// FuzzParseCall: parseCall never panics, refuses with a 400 in OpenAI's
// shape, and what it accepts is a JSON object with a string model, the
// body kept as sent.
func FuzzParseCall(f *testing.F) {
	for i, b := range seedBodies() {
		f.Add(uint8(i), []byte(b))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		o := fuzzOps[int(op)%len(fuzzOps)]
		c, err := parseCallWith(o, body, config.JSONLimits{MaxDepth: 16, MaxStringBytes: 256, MaxArrayItems: 64})
		if err != nil {
			var ae *APIError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, http.StatusBadRequest, ae.Status)
			require.Equal(t, "invalid_request_error", ae.Type)
			require.NotEmpty(t, ae.Code)
			require.NotEmpty(t, ae.Message)
			return
		}
		require.True(t, json.Valid(body))
		m := gjson.GetBytes(body, "model")
		require.Equal(t, gjson.String, m.Type, "an accepted body has a string model")
		require.Equal(t, m.Str, c.model)
		require.NotEmpty(t, c.model)
		require.Equal(t, o, c.op)
		require.Equal(t, string(body), string(c.body))
		if o == providers.OpChat {
			msgs := gjson.GetBytes(body, "messages")
			require.True(t, msgs.IsArray() && len(msgs.Array()) > 0, "an accepted chat has messages")
		}
	})
}

// FuzzIngress: whatever the body, /v1/chat/completions answers 2xx, or
// 4xx in OpenAI's error shape; never 5xx, never a panic. One gateway
// serves every input.
func FuzzIngress(f *testing.F) {
	for _, b := range seedBodies() {
		f.Add([]byte(b))
	}
	in := newTestIngress(f, "64KiB")
	f.Fuzz(func(t *testing.T, body []byte) {
		status, out := in.post(t, chatPath, body)
		if status >= 200 && status < 300 {
			return
		}
		require.True(t, status >= 400 && status < 500, "status %d: %s", status, out)
		e := decodeOpenAIError(t, out)
		assert.NotEmpty(t, *e.Error.Message)
		assert.NotEmpty(t, *e.Error.Type)
		assert.NotEmpty(t, *e.Error.Code)
	})
}
