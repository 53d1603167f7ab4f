package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/quota"
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
	prompts      []promptCount     // prompt tokens counted so far, per encoding
	// knownPrompt, when positive, is promptEstimate's answer, known
	// beforehand: an exact cache entry's for this very request.
	knownPrompt int64
	// ingress renders answers and errors in the client's API format when
	// it is not OpenAI's (the body above is then a translation); nil
	// relays OpenAI's answers as they come.
	ingress ingress
	// native is the client's own request, for a backend that speaks its
	// format (providers.Native); nil when there is none, or when it holds
	// sensitive data the translated body does not (the decision was made
	// on the translation).
	native *providers.Native
}

// parseCallWith validates the body of an OpenAI request before any other
// work: in one linear pass, JSON syntax, the shape limits of lim (zero
// fields take their defaults) and keys repeated in one object; then a JSON
// object, model present and a string, stream a boolean, and every
// documented parameter of op by type and range (params.go). Unknown
// members pass through for the upstream to judge; the body is not
// rewritten.
func parseCallWith(op providers.Operation, body []byte, lim config.JSONLimits) (*call, error) {
	if len(body) == 0 {
		return nil, invalidRequest("invalid_json", "", "The request body is empty; expected a JSON object.")
	}
	// Parsers disagree on which copy of a duplicated key wins; the
	// classifier and the upstream must read the same text, so a repeated
	// key is refused along with bodies past the limits.
	l := resolveJSONLimits(lim)
	if v := checkJSON(body, l); v.problem != jsonOK {
		return nil, v.apiError(l)
	}
	// The body is valid JSON: read it in place. Nothing read from it
	// outlives the request except the model, which is copied.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return nil, invalidRequest("invalid_json", "", "The request body must be a JSON object.")
	}
	m := root.Get("model")
	switch {
	case !m.Exists() || m.Type == gjson.Null || (m.Type == gjson.String && m.Str == ""):
		return nil, invalidRequest("missing_required_parameter", "model", "You must provide a model parameter.")
	case m.Type != gjson.String:
		return nil, invalidRequest("invalid_type", "model", "Invalid type for 'model': expected a string.")
	}
	c := &call{op: op, model: strings.Clone(m.Str), body: body}
	if op != providers.OpEmbeddings {
		switch st := root.Get("stream"); st.Type {
		case gjson.True:
			c.stream = true
		case gjson.False, gjson.Null:
		default:
			if st.Exists() {
				return nil, invalidRequest("invalid_type", "stream", "Invalid type for 'stream': expected a boolean.")
			}
		}
	}
	if err := validateParams(op, root, c); err != nil {
		return nil, err
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
		call, err := parseCallWith(op, body, s.cfg.Server.JSON)
		if err != nil {
			return err
		}
		return s.serve(c, p, call)
	}
}

// serve runs a parsed request through the pipeline every ingress shares:
// classify, decide (policy), admit (quota), route, then answer, settle and
// record. call.body is OpenAI's format whatever the ingress; call.ingress
// renders the answer in the client's.
func (s *Server) serve(c *fiber.Ctx, p *Principal, call *call) error {
	op := call.op
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
	// The ingress set native only when a deployment of this route takes
	// it (modelSpeaks); it goes only when the decision covers all of it.
	if call.native != nil && !coveredBy(s.classifier.ScanRequest(call.native.Body), call.findings) {
		call.native = nil // the decision covers only what the translation holds
	}
	probe := s.probeCache(c, call, p, rec)
	adm, err := s.admitRequest(c, call, p, rec, probe)
	rec.decisionID, rec.ticket = adm.decisionID, adm.ticket
	if call.op == providers.OpChat {
		rec.cacheResult = adm.cache.header()
		c.Set(HeaderCache, rec.cacheResult)
	}
	if err != nil {
		return err
	}
	if adm.cache.hit != nil {
		return s.serveCached(c, call, rec, adm.cache)
	}
	call.route = adm.route
	rec.routeSpanCtx, rec.routeSpan = s.tel.Tracer.Start(rec.ctx, "route", trace.WithAttributes(attribute.Int("switchyard.deployments", len(call.route.Deployments))))
	req := &providers.Request{Operation: op, Body: call.body, Stream: call.stream, RequestID: rec.requestID, Native: call.native}
	if call.stream {
		return s.stream(c, call, req, rec, adm.cache)
	}
	return s.unary(c, call, req, rec, adm.cache)
}

// admission is what the pipeline decided for a request, in one value: the
// route to run (the policy's order, its redaction and the quota's failure
// mode applied), the decision that chose it, the reservation it holds
// (nil without quotas), which settles when the request ends, and what the
// response cache does: serve a stored answer (then there is no route nor
// reservation) or store this one.
type admission struct {
	route      *router.Route
	decisionID string
	ticket     *quota.Ticket
	cache      cacheOutcome
}

// admitRequest runs the policy, then (unless a stored answer serves the
// request) the quotas, on a classified request. The decision id is set
// even when it fails, for the logs.
func (s *Server) admitRequest(c *fiber.Ctx, call *call, p *Principal, rec *record, probe *cacheProbe) (admission, error) {
	a := admission{decisionID: "dec_" + strings.TrimPrefix(newRequestID(), "req_")}
	v, err := s.decide(c, call, p, rec, a.decisionID, probe.view())
	if err != nil {
		return a, err
	}
	if probe != nil {
		// Counted for the policy on the route it looked up (the decision
		// narrows it next): kept with the answer for an identical request.
		probe.estimate = call.promptEstimate()
	}
	if a.cache = probe.decided(v); a.cache.hit != nil {
		return a, nil // a hit costs nothing: no reservation
	}
	call.knownPrompt = 0 // it was the whole route's: the decision may narrow it
	call.route = v.route
	a.route, a.ticket, err = s.admit(c, call, p, rec)
	return a, err
}

// unary serves a non-streaming request, and stores the answer when the
// cache outcome says so.
func (s *Server) unary(c *fiber.Ctx, call *call, req *providers.Request, rec *record, cached cacheOutcome) error {
	ctx, cancel := s.upstreamContext(rec)
	defer cancel(nil)
	stop := watchClient(c.Context().Conn(), s.cfg.Server.StreamKeepalive, cancel)
	s.waiting(rec)
	res, err := s.router.Do(ctx, call.route, req)
	s.answered(rec)
	stop()
	attempted(c, rec, res.Attempts)
	if err != nil {
		return err
	}
	d := res.Deployment
	noteResponse(rec, res.Response.Body)
	usage := res.Response.Usage
	if usage == nil {
		usage = estimateUnary(call, d, res.Response.Body)
	}
	cost := d.Price.Cost(billed(usage))
	rec.usage, rec.cost = usage, cost
	body := res.Response.Body
	if !res.Response.Native {
		p, _ := c.Locals(localPrincipal).(*Principal)
		s.storeAnswer(cached, p, call, d, body, usage, cost)
	}
	if res.Response.Native {
		c.Response().Header.Del(HeaderDropped) // the backend got the client's own request
		if body, err = call.ingress.nativeAnswer(body); err != nil {
			return err
		}
	} else if call.ingress != nil {
		if body, err = call.ingress.answer(body, usage); err != nil {
			return err
		}
	}

	setBackendHeaders(c, d)
	c.Set(HeaderCost, cost.String())
	if usage.Estimated {
		c.Set(HeaderEstimated, "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(http.StatusOK).Send(body)
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

// billed is usage as the price list counts it.
func billed(u *providers.Usage) pricing.Tokens {
	return pricing.Tokens{Prompt: u.PromptTokens, Cached: u.CachedTokens, CacheWrite: u.CacheWriteTokens, Completion: u.CompletionTokens}
}
