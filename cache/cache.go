// Package cache is the gateway's response cache: answers kept under a key
// that covers everything that decides them, found again exactly (the same
// normalised request) or semantically (a lookup text whose embedding is
// close enough, in the same conversation context).
//
// A key is made per tenant and per policy bundle revision, so one tenant's
// answers are never served to another and a policy change invalidates
// every entry; the gateway also stores the decision's route set with each
// entry and serves it only where the same set was allowed. Entries live in
// a bounded in-process LRU (Memory) or in Redis, shared by the replicas
// (Redis), both with a TTL. The semantic Index is in process and rebuilt
// from the shared store on start. Chat streams are turned into a complete
// answer to be stored (Assembler) and a stored answer back into a stream
// (Replay).
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Entry is one cached answer.
type Entry struct {
	// Key is the exact key (ExactKey) it is stored under.
	Key string `json:"key"`
	// Tenant, Route and Revision are whose it is, the public model (route)
	// asked for, and the policy bundle revision that decided it.
	Tenant   string `json:"tenant"`
	Route    string `json:"route"`
	Revision string `json:"revision"`
	// RouteSet is the decision's allowed deployments (RouteSet).
	RouteSet string `json:"route_set"`
	// Partition and Vector are the semantic lookup's partition and the
	// lookup text's embedding; empty for an exact-only entry.
	Partition string    `json:"partition,omitempty"`
	Vector    []float32 `json:"vector,omitempty"`
	// Answer is the OpenAI chat completion as the upstream made it.
	Answer json.RawMessage `json:"answer"`
	// PromptTokens and CompletionTokens are the answer's usage.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// Estimated is true when the usage was the gateway's estimate.
	Estimated bool `json:"estimated,omitempty"`
	// CostPicoUSD is what the answer cost when it was made: what each hit
	// saves.
	CostPicoUSD int64 `json:"cost_pico_usd"`
	// Backend, Kind and UpstreamModel are what made the answer.
	Backend       string `json:"backend"`
	Kind          string `json:"kind"`
	UpstreamModel string `json:"upstream_model"`
	// PromptEstimate is the gateway's estimate of the request's prompt
	// tokens, for a later identical request (an exact hit) to reuse
	// under the same EstimateFor (what counted it); 0: none.
	PromptEstimate int64  `json:"prompt_estimate,omitempty"`
	EstimateFor    string `json:"estimate_for,omitempty"`
	// Sensitive is true when the request held sensitive data.
	Sensitive bool `json:"sensitive,omitempty"`
	// Created is when the entry was stored.
	Created time.Time `json:"created"`
}

// Store keeps entries. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the entry under key, or nil (and no error) when there
	// is none or it expired.
	Get(ctx context.Context, key string) (*Entry, error)
	// Put stores e under e.Key, replacing any entry there.
	Put(ctx context.Context, e *Entry) error
	// Delete removes the entry under key, if any.
	Delete(ctx context.Context, key string) error
	// Scan calls f with every entry, in no order, until f returns false;
	// possibly from several goroutines at once (one per Redis Cluster
	// primary).
	Scan(ctx context.Context, f func(*Entry) bool) error
}

// ErrTooLarge is returned by a store's Put for an entry past its size
// bound.
var ErrTooLarge = errors.New("cache: entry too large")

// Request is what an exact key covers: who asks, under which policy, for
// what.
type Request struct {
	Tenant   string
	Revision string
	// Operation is the API operation (chat).
	Operation string
	// Route is the public model asked for.
	Route string
	// Body is the request in OpenAI's format; it must be valid JSON.
	Body []byte
}

// ignored are the request members that do not change the answer: how it
// is delivered, who the end user is, and the provider-side options.
var ignored = []string{"model", "stream", "stream_options", "user", "metadata", "store", "service_tier",
	"safety_identifier", "prompt_cache_key", "prompt_cache_retention"}

// canonical is body without the ignored members, its objects' keys
// sorted and numbers as written.
func canonical(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("cache: the request is not a JSON object")
	}
	for _, k := range ignored {
		delete(m, k)
	}
	return normalise(m).(map[string]any), nil
}

// normalise writes every number one way: 0, 0.0 and 0e0 are one value,
// integers exactly (seeds may pass 2^53).
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return v
}

// digest hashes the parts, each length-prefixed.
func digest(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := len(p)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ExactKey is the key of r: a SHA-256 of the tenant, the policy revision,
// the operation, the route and the request normalised (ignored members
// dropped, keys sorted; messages, tools and every sampling parameter
// kept).
func ExactKey(r Request) (string, error) {
	m, err := canonical(r.Body)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return digest("exact/v1", r.Tenant, r.Revision, r.Operation, r.Route, string(b)), nil
}

// Lookup is a semantic lookup: the text to embed and the partition whose
// entries it may match.
type Lookup struct {
	Text      string
	Partition string
}

// SemanticLookup splits a chat request into the text to embed, the last
// message's text, which must be the user's, and a partition: a digest of
// the tenant, the revision, the route and everything else in the request
// (earlier turns, system prompt, tools, parameters), so that only the same
// conversation context with a similar last question can match. ok is
// false when the last message is not a user's text (images, audio, files,
// tool results are matched exactly or not at all).
func SemanticLookup(r Request) (Lookup, bool) {
	m, err := canonical(r.Body)
	if err != nil {
		return Lookup{}, false
	}
	msgs, _ := m["messages"].([]any)
	if len(msgs) == 0 {
		return Lookup{}, false
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if role, _ := last["role"].(string); role != "user" {
		return Lookup{}, false
	}
	text, ok := textOf(last["content"])
	if !ok || strings.TrimSpace(text) == "" {
		return Lookup{}, false
	}
	rest := make(map[string]any, len(last))
	for k, v := range last {
		rest[k] = v
	}
	rest["content"] = nil
	msgs[len(msgs)-1] = rest
	b, err := json.Marshal(m)
	if err != nil {
		return Lookup{}, false
	}
	return Lookup{Text: text, Partition: digest("semantic/v1", r.Tenant, r.Revision, r.Operation, r.Route, string(b))}, true
}

// textOf is a message content's text: a string, or text parts only.
func textOf(content any) (string, bool) {
	switch c := content.(type) {
	case string:
		return c, true
	case []any:
		var b strings.Builder
		for _, p := range c {
			part, _ := p.(map[string]any)
			if t, _ := part["type"].(string); t != "text" {
				return "", false
			}
			s, _ := part["text"].(string)
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(s)
		}
		return b.String(), true
	}
	return "", false
}

// RouteSet is a decision's allowed deployments as one comparable string,
// in the decision's order (a different order may serve a different
// deployment, hence a different answer).
func RouteSet(deployments []string) string { return strings.Join(deployments, "\x1f") }
