package gateway

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
	"github.com/switchyard/switchyard/tokens"
)

// encoding is how a deployment's model counts tokens: the local model's
// own tokenizer, tiktoken's encoding for OpenAI-family model names (on any
// backend: Azure and OpenAI-compatible servers of OpenAI models count the
// same), and tokens.Approx for every other model (Claude, Gemini, Llama on
// a self-hosted server, …), which over-estimates.
func encoding(b config.Backend, model string, local *localengine.Pool) tokens.Encoding {
	if b.Provider == config.ProviderLlamaCpp {
		if m, err := local.Model(model); err == nil {
			return localTokens{m}
		}
		return tokens.Approx // not loaded: requests to it fail anyway
	}
	return tokens.For(model)
}

// localTokens counts with a local model's own tokenizer. A struct holding
// a pointer, so that it is comparable (router.Deployment.Tokens).
type localTokens struct{ m *localengine.Model }

func (l localTokens) Count(text string) int { return len(l.m.Tokenize(text, false)) }

// warmEncodings loads the tiktoken encodings the routes use (40–300 ms
// each, once per process) before the first request needs them.
func warmEncodings(r *router.Router) {
	seen := map[tokens.Encoding]bool{}
	for _, rt := range r.Routes() {
		for _, d := range rt.Deployments {
			if d.Tokens != nil && !seen[d.Tokens] {
				seen[d.Tokens] = true
				d.Tokens.Count("warm")
			}
		}
	}
}

// promptCount is a request's prompt tokens under one encoding.
type promptCount struct {
	enc tokens.Encoding
	n   int64
}

// promptTokensFor is the request's prompt tokens as deployment d counts
// them (tokens.Prompt), counted once per encoding and request.
func (c *call) promptTokensFor(d *router.Deployment) int64 {
	enc := d.Tokens
	if enc == nil {
		enc = tokens.Approx
	}
	for _, pc := range c.prompts {
		if pc.enc == enc {
			return pc.n
		}
	}
	n := tokens.Prompt(enc, string(c.op), c.body)
	c.prompts = append(c.prompts, promptCount{enc, n})
	return n
}

// promptEstimate is the most prompt tokens any deployment of the
// request's route may count: what the policy sees and quotas reserve.
func (c *call) promptEstimate() int64 {
	if c.knownPrompt > 0 {
		return c.knownPrompt
	}
	if c.route == nil || len(c.route.Deployments) == 0 {
		return tokens.Prompt(tokens.Approx, string(c.op), c.body)
	}
	var most int64
	for _, d := range c.route.Deployments {
		most = max(most, c.promptTokensFor(d))
	}
	return most
}

// estimateSignature names what promptEstimate counted: the route's
// deployments (backend and model, hence encoding) and the body's bytes
// (an exact cache key ignores spacing and key order, which the count of
// raw JSON members such as tools does not). A stored estimate is reused
// only under the same.
func (c *call) estimateSignature() string {
	if c.route == nil {
		return ""
	}
	var b strings.Builder
	for _, d := range c.route.Deployments {
		b.WriteString(d.Backend)
		b.WriteByte('/')
		b.WriteString(d.Model)
		b.WriteByte(';')
	}
	h := fnv.New64a()
	h.Write(c.body)
	b.WriteString(strconv.FormatUint(h.Sum64(), 36))
	return b.String()
}

// estimateUnary stands in for usage an upstream did not report: the
// prompt as deployment d counts it, and the text of the answer's choices
// (content, text, tool calls) likewise. It is marked Estimated wherever
// it is shown.
func estimateUnary(call *call, d *router.Deployment, resp []byte) *providers.Usage {
	u := &providers.Usage{PromptTokens: call.promptTokensFor(d), Estimated: true}
	if call.op == providers.OpEmbeddings {
		return u
	}
	enc := d.Tokens
	if enc == nil {
		enc = tokens.Approx
	}
	gjson.GetBytes(resp, "choices").ForEach(func(_, ch gjson.Result) bool {
		for _, s := range []string{ch.Get("message.content").Str, ch.Get("text").Str, ch.Get("message.tool_calls").Raw} {
			if s != "" {
				u.CompletionTokens += int64(enc.Count(s))
			}
		}
		return true
	})
	return u
}
