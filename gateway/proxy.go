package gateway

import (
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// call is one validated API request, ready for the router.
type call struct {
	op           providers.Operation
	model        string
	route        *router.Route
	stream       bool
	includeUsage bool     // the client asked for usage in the stream
	maxTokens    int64    // max_completion_tokens, else max_tokens; 0 when unset
	temperature  *float64 // nil when unset
	body         []byte
	findings     classify.Findings // sensitive data in the request
}

// parseCall validates the body of an OpenAI request: JSON object, model
// present and a string, stream a boolean. Everything else is passed through
// for the upstream to judge.
func parseCall(op providers.Operation, body []byte) (*call, error) {
	if len(body) == 0 {
		return nil, invalidRequest("invalid_json", "", "The request body is empty; expected a JSON object.")
	}
	if !gjson.ValidBytes(body) {
		return nil, invalidRequest("invalid_json", "", "We could not parse the JSON body of your request.")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, invalidRequest("invalid_json", "", "The request body must be a JSON object.")
	}
	// Parsers disagree on which copy of a duplicated key wins; the
	// classifier and the upstream must read the same text.
	// A key is named only when it is an identifier: a key may be data
	// ("jane@bank.de"), and errors are logged.
	if key, dup := duplicateKey(root); dup {
		if identifier(key) {
			return nil, invalidRequest("invalid_json", "", "The request body repeats the key %q in one object.", key)
		}
		return nil, invalidRequest("invalid_json", "", "The request body repeats a key in one object.")
	}
	m := root.Get("model")
	switch {
	case !m.Exists() || m.Type == gjson.Null || (m.Type == gjson.String && m.Str == ""):
		return nil, invalidRequest("missing_required_parameter", "model", "You must provide a model parameter.")
	case m.Type != gjson.String:
		return nil, invalidRequest("invalid_type", "model", "Invalid type for 'model': expected a string.")
	}
	c := &call{op: op, model: m.Str, body: body}
	if op == providers.OpEmbeddings {
		return c, nil
	}
	switch st := root.Get("stream"); st.Type {
	case gjson.True:
		c.stream = true
	case gjson.False, gjson.Null:
	default:
		if st.Exists() {
			return nil, invalidRequest("invalid_type", "stream", "Invalid type for 'stream': expected a boolean.")
		}
	}
	c.includeUsage = root.Get("stream_options.include_usage").Type == gjson.True
	if c.maxTokens = root.Get("max_completion_tokens").Int(); c.maxTokens == 0 {
		c.maxTokens = root.Get("max_tokens").Int()
	}
	if t := root.Get("temperature"); t.Type == gjson.Number {
		v := t.Float()
		c.temperature = &v
	}
	return c, nil
}

// outputEstimate is the completion a request may produce, for cost
// estimates and reservations: its max_tokens, else the configured default,
// bounded by maxOutputEstimate; nothing for embeddings.
func (s *Server) outputEstimate(c *call) int64 {
	if c.op == providers.OpEmbeddings {
		return 0
	}
	if c.maxTokens <= 0 {
		return s.cfg.Quotas.DefaultMaxOutputTokens
	}
	return min(c.maxTokens, maxOutputEstimate)
}

// proxy serves an OpenAI operation through the router.
func (s *Server) proxy(op providers.Operation) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := c.Locals(localPrincipal).(*Principal)
		body, err := s.requestBody(c)
		if err != nil {
			return err
		}
		call, err := parseCall(op, body)
		if err != nil {
			return err
		}
		rec := recordOf(c)
		rec.model, rec.stream, rec.op = call.model, call.stream, op
		rec.maxTokens, rec.temperature = call.maxTokens, call.temperature
		// Labels and counts only: the matched text never leaves here.
		sp := s.child(rec, "classify")
		call.findings = s.classifier.ScanRequest(call.body)
		rec.entities = call.findings.Counts()
		sp.SetAttributes(attribute.Int("switchyard.entities", len(rec.entities)))
		sp.End()
		rt, ok := s.router.Lookup(call.model)
		if !ok || !p.Allows(rt) {
			return modelNotFound(call.model)
		}
		call.route, rec.route = rt, rt.Name
		if call.route, err = s.decide(c, call, p, rec); err != nil {
			return err
		}
		if call.route, err = s.admit(c, call, p, rec); err != nil {
			return err
		}
		rec.routeSpanCtx, rec.routeSpan = s.tel.Tracer.Start(rec.ctx, "route", trace.WithAttributes(attribute.Int("switchyard.deployments", len(call.route.Deployments))))
		req := &providers.Request{Operation: op, Body: call.body, Stream: call.stream, RequestID: rec.requestID}
		if call.stream {
			return s.stream(c, call, req, rec)
		}
		return s.unary(c, call, req, rec)
	}
}

// unary serves a non-streaming request.
func (s *Server) unary(c *fiber.Ctx, call *call, req *providers.Request, rec *record) error {
	ctx, cancel := s.upstreamContext(rec)
	defer cancel(nil)
	stop := watchClient(c.Context().Conn(), s.cfg.Server.StreamKeepalive, cancel)
	res, err := s.router.Do(ctx, call.route, req)
	stop()
	attempted(c, rec, res.Attempts)
	if err != nil {
		return err
	}
	d := res.Deployment
	noteResponse(rec, res.Response.Body)
	usage := res.Response.Usage
	if usage == nil {
		usage = estimateUnary(call, res.Response.Body)
	}
	cost := d.Price.Cost(tokens(usage))
	rec.usage, rec.cost = usage, cost

	setBackendHeaders(c, d)
	c.Set(HeaderCost, cost.String())
	if usage.Estimated {
		c.Set(HeaderEstimated, "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(http.StatusOK).Send(res.Response.Body)
}

// attempted reports the deployments tried, on the response and in the
// access record; the last one is the one that answered or failed last.
func attempted(c *fiber.Ctx, rec *record, attempts []router.Attempt) {
	rec.attempts = len(attempts)
	c.Set(HeaderAttempts, strconv.Itoa(len(attempts)))
	if n := len(attempts); n > 0 {
		d := attempts[n-1].Deployment
		rec.backend, rec.upstream = d.Backend, d.Model
	}
}

// setBackendHeaders says where the request went.
func setBackendHeaders(c *fiber.Ctx, d *router.Deployment) {
	c.Set(HeaderBackend, d.Backend)
	c.Set(HeaderKind, d.Kind)
	c.Set(HeaderModel, d.Model)
}

// estimateUnary stands in for usage an upstream did not report: about four
// bytes of JSON per prompt token and four bytes of text per completion
// token. It is marked Estimated wherever it is shown.
func estimateUnary(call *call, resp []byte) *providers.Usage {
	u := &providers.Usage{PromptTokens: estimateTokens(len(call.body)), Estimated: true}
	if call.op == providers.OpEmbeddings {
		return u
	}
	n := 0
	gjson.GetBytes(resp, "choices").ForEach(func(_, ch gjson.Result) bool {
		n += len(ch.Get("message.content").Str) + len(ch.Get("text").Str) + len(ch.Get("message.tool_calls").Raw)
		return true
	})
	u.CompletionTokens = estimateTokens(n)
	return u
}

func estimateTokens(bytes int) int64 { return int64((bytes + 3) / 4) }

// identifier reports a parameter-like key: letters, digits and _, 40 at
// most, starting with a letter.
func identifier(k string) bool {
	if k == "" || len(k) > 40 || !(k[0] >= 'a' && k[0] <= 'z' || k[0] >= 'A' && k[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// duplicateKey finds a key that appears twice in one object, at any depth.
func duplicateKey(v gjson.Result) (string, bool) {
	var dupKey string
	var walk func(gjson.Result) bool
	walk = func(v gjson.Result) bool {
		switch {
		case v.IsObject():
			seen := map[string]bool{}
			ok := true
			v.ForEach(func(k, child gjson.Result) bool {
				if seen[k.Str] {
					dupKey, ok = k.Str, false
					return false
				}
				seen[k.Str] = true
				ok = walk(child)
				return ok
			})
			return ok
		case v.IsArray():
			ok := true
			v.ForEach(func(_, child gjson.Result) bool {
				ok = walk(child)
				return ok
			})
			return ok
		}
		return true
	}
	if walk(v) {
		return "", false
	}
	return dupKey, true
}

// tokens is usage as the price list counts it.
func tokens(u *providers.Usage) pricing.Tokens {
	return pricing.Tokens{Prompt: u.PromptTokens, Cached: u.CachedTokens, CacheWrite: u.CacheWriteTokens, Completion: u.CompletionTokens}
}
