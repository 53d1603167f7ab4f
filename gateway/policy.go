package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/classify"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// Request headers that feed the policy.
const (
	HeaderDataClass    = "X-Switchyard-Data-Class"
	HeaderMaxLatency   = "X-Switchyard-Max-Latency-Ms"
	HeaderOriginRegion = "X-Switchyard-Origin-Region"
	HeaderDecisionID   = "X-Switchyard-Decision-Id"
)

// verdict is what the policy decided for a request: the route to run, the
// bundle revision that decided, and whether the response cache is
// forbidden (obligations.cache: "off", or no decision at all).
type verdict struct {
	route    *router.Route
	revision string
	cacheOff bool
	// obligations are the decision's obligations that shape the answer
	// (the output cap, what is redacted for which kind), in one string: a
	// stored answer is served only under the same ones.
	obligations string
}

// answerObligations is what of a decision, besides its routes, changes
// the answer a deployment gives.
func answerObligations(d *policies.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "max_output_tokens=%d", d.Obligations.MaxOutputTokens)
	for _, kind := range slices.Sorted(maps.Keys(d.Redact)) {
		labels := slices.Clone(d.Redact[kind])
		slices.Sort(labels)
		fmt.Fprintf(&b, ";redact[%s]=%s", kind, strings.Join(labels, ","))
	}
	return b.String()
}

// decide asks the policy where the request may go. Its verdict's route is
// the allowed deployments in the policy's order, those of a kind with a
// redaction obligation sending the redacted body. A denial is a 403.
// cached is the response cache's view of the request, for the input.
func (s *Server) decide(c *fiber.Ctx, call *call, p *Principal, rec *record, id string, cached policies.Cache) (verdict, error) {
	in := s.policyInput(c.Get, call, p, rec.requestID)
	in.Cache = cached
	c.Set(HeaderDecisionID, id)
	sp := s.child(rec, "policy", attrDecisionID.String(id))
	d, err := s.policy.Decide(rec.ctx, in) // the request's context: its trace, and its end
	if err == nil {
		err = checkDecision(d)
	}
	s.notePolicy(sp, d, err)
	if err != nil {
		if s.cfg.Policy.OnError == "open" {
			dc := strings.ToLower(c.Get(HeaderDataClass))
			rt, err := s.failOpen(call, rec, len(call.findings.Fields) > 0 || (dc != "" && dc != "public"), err)
			return verdict{route: rt, cacheOff: true}, err
		}
		return verdict{}, &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "policy_error",
			Message: fmt.Sprintf("The routing policy could not be evaluated (decision %s); the request was refused.", id), Err: err}
	}
	s.audit(id, in, d)
	if !d.Allow && overBudgetOnly(d) {
		// The budget, not the rules, stopped it: the client sees the
		// quota error it would have met at admission.
		return verdict{}, &APIError{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "insufficient_quota",
			RetryAfter: strconv.FormatInt(untilPeriodEnds(!s.dailyBudget(p), time.Now().UTC()), 10),
			Message:    fmt.Sprintf("You exceeded your current quota: the remaining budget cannot pay for this request on any allowed deployment (decision %s).", id)}
	}
	if !d.Allow {
		codes := make([]string, len(d.Deny))
		for i, r := range d.Deny {
			codes[i] = r.Code
		}
		msg := fmt.Sprintf("Refused by policy (%s), decision %s: %s.", strings.Join(codes, ", "), id, d.Deny[0].Message)
		if len(d.Excluded) > 0 {
			msg += " Excluded: " + describeExcluded(d.Excluded) + "."
		}
		return verdict{}, &APIError{Status: http.StatusForbidden, Type: "permission_error", Code: strings.ToLower(codes[0]), Message: msg}
	}
	// Redaction reads the findings' offsets in the body as the client sent
	// it, so the output cap is applied after it, to each body.
	rt, err := s.routeFor(call, d)
	if err != nil {
		return verdict{}, err
	}
	if limit := d.Obligations.MaxOutputTokens; limit > 0 && call.op != providers.OpEmbeddings {
		call.body = capOutputTokens(call.body, limit)
		if call.maxTokens <= 0 || call.maxTokens > limit {
			call.maxTokens = limit
		}
		for i, dep := range rt.Deployments {
			if red, ok := dep.Provider.(redacting); ok {
				red.body = capOutputTokens(red.body, limit)
				cp := *dep
				cp.Provider = red
				rt.Deployments[i] = &cp
			}
		}
	}
	return verdict{route: rt, revision: d.Revision, cacheOff: d.Obligations.Cache == "off", obligations: answerObligations(d)}, nil
}

// policyInput builds the policy's view of a request; header reads the
// request's headers.
func (s *Server) policyInput(header func(string, ...string) string, call *call, p *Principal, requestID string) *policies.Input {
	promptEst := call.promptEstimate()
	outEst := s.outputEstimate(call)
	slo, _ := strconv.ParseInt(header(HeaderMaxLatency), 10, 64)
	in := &policies.Input{
		Request: policies.Request{
			ID: requestID, Operation: string(call.op), Model: call.model, Stream: call.stream,
			EstimatedInputTokens: int64(sig2(float64(promptEst))), MaxOutputTokens: call.maxTokens,
			DataClass:    strings.ToLower(strings.Clone(header(HeaderDataClass))),
			Entities:     call.findings.Counts(),
			WeakEntities: call.findings.WeakCounts(),
			OriginRegion: strings.Clone(header(HeaderOriginRegion)),
			LatencySLOMs: max(slo, 0),
		},
		Subject: policies.Subject{Tenant: p.Tenant, Team: p.Team, User: p.User, KeyID: p.KeyID},
		Budget:  s.budgetInput(p),
	}
	if in.Request.Entities == nil {
		in.Request.Entities = map[string]int{}
	}
	if in.Request.WeakEntities == nil {
		in.Request.WeakEntities = map[string]int{}
	}
	in.Request.Categories = make(map[string]string, len(in.Request.Entities)+len(in.Request.WeakEntities))
	for _, m := range []map[string]int{in.Request.Entities, in.Request.WeakEntities} {
		for label := range m {
			in.Request.Categories[label] = s.classifier.Category(label)
		}
	}
	for _, d := range call.route.Deployments {
		b := s.backends[d.Backend]
		in.Candidates = append(in.Candidates, policies.Candidate{
			ID: d.ID(), Backend: d.Backend, Provider: b.Provider, Kind: d.Kind,
			Region: b.Region, Jurisdiction: b.Jurisdiction, Healthy: d.Healthy(),
			P95LatencyMs:      sig2(float64(d.P95Latency().Microseconds()) / 1000),
			TTFTMs:            sig2(float64(d.P95TTFT().Microseconds()) / 1000),
			EstCostUSD:        sig2Up(d.Price.Cost(pricing.Tokens{Prompt: promptEst, Completion: outEst}).USD()),
			ContextWindow:     b.ContextWindow,
			ZeroDataRetention: b.ZeroDataRetention,
		})
	}
	return in
}

// routeFor is the route the policy allows, in its order.
func (s *Server) routeFor(call *call, d *policies.Decision) (*router.Route, error) {
	byID := make(map[string]*router.Deployment, len(call.route.Deployments))
	for _, dep := range call.route.Deployments {
		byID[dep.ID()] = dep
	}
	rt := &router.Route{Name: call.route.Name}
	redacted := map[string]redacting{} // kind -> redacted body and its restorer
	for _, id := range d.Routes {
		dep, ok := byID[id]
		if !ok {
			continue // the policy named a deployment that is not a candidate
		}
		if labels := d.Redact[dep.Kind]; len(labels) > 0 && len(call.findings.Fields) > 0 {
			red, ok := redacted[dep.Kind]
			if !ok {
				set := make(map[string]bool, len(labels))
				for _, l := range labels {
					set[l] = true
				}
				// One redactor per kind and request: its placeholder map
				// lives in this request's memory only.
				r := &classify.Redactor{Labels: set}
				body, counts, err := r.Body(call.body, call.findings)
				if err != nil {
					return nil, fmt.Errorf("redacting for %s backends: %w", dep.Kind, err)
				}
				for label, n := range counts {
					s.tel.Metrics.Redactions.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("switchyard.entity", label), attrBackendKind.String(dep.Kind)))
				}
				red = redacting{body: body, restore: r.Restorer()}
				redacted[dep.Kind] = red
			}
			cp := *dep // shares the health of the original
			red.Provider = dep.Provider
			cp.Provider = red
			dep = &cp
		}
		rt.Deployments = append(rt.Deployments, dep)
	}
	return rt, nil
}

// redacting sends a redacted body in place of the client's, and puts the
// original values back where their placeholders come back in the answer,
// in JSON and in streams (a placeholder split across chunks included).
type redacting struct {
	providers.Provider
	body    []byte
	restore *classify.Restorer
}

func (r redacting) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	q := *req
	q.Body = r.body
	q.Native = nil // the client's own request is not redacted: never send it
	res, err := r.Provider.Do(ctx, &q)
	if err != nil || res == nil {
		return res, err
	}
	out := *res
	out.Body = r.restore.JSON(res.Body)
	return &out, nil
}

func (r redacting) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	q := *req
	q.Body = r.body
	q.Native = nil // the client's own request is not redacted: never send it
	st, err := r.Provider.Stream(ctx, &q)
	if err != nil {
		return nil, err
	}
	return &restoringStream{Stream: st, restore: r.restore.Stream()}, nil
}

// restoringStream restores placeholders event by event. Text that could
// still become a placeholder is held back (a placeholder's length at
// most) and flushed with the choice's last chunk, or as one more chunk
// before the end.
type restoringStream struct {
	providers.Stream
	restore *classify.StreamRestorer
	last    []byte // the last chunk seen, the template of a flushed one
	ended   error  // the end to report after a flushed chunk
}

func (s *restoringStream) Recv() (providers.Event, error) {
	if s.ended != nil {
		return providers.Event{}, s.ended
	}
	ev, err := s.Stream.Recv()
	if err != nil {
		if flushed := s.restore.Flush(s.last); flushed != nil {
			s.ended = err
			return providers.Event{Data: flushed}, nil
		}
		return ev, err
	}
	if !ev.UsageOnly {
		s.last = append(s.last[:0], ev.Data...)
	}
	ev.Data = s.restore.Chunk(ev.Data)
	return ev, nil
}

// capOutputTokens enforces a max-output obligation on the request body.
func capOutputTokens(body []byte, limit int64) []byte {
	key := "max_tokens"
	if gjson.GetBytes(body, "max_completion_tokens").Exists() {
		key = "max_completion_tokens"
	}
	if cur := gjson.GetBytes(body, key); cur.Exists() && cur.Int() > 0 && cur.Int() <= limit {
		return body
	}
	if out, err := sjson.SetBytes(body, key, limit); err == nil {
		return out
	}
	return body
}

// auditRecord is one decision in the audit trail. It never holds prompt
// text: entity labels and counts only.
type auditRecord struct {
	Time       time.Time        `json:"time"`
	DecisionID string           `json:"decision_id"`
	RequestID  string           `json:"request_id"`
	Revision   string           `json:"revision"`
	Subject    policies.Subject `json:"subject"`
	Model      string           `json:"model"`
	DataClass  string           `json:"data_class,omitempty"`
	Entities   map[string]int   `json:"entities,omitempty"`
	// WeakEntities are the weak signals (they count for strict tenants).
	WeakEntities map[string]int       `json:"weak_entities,omitempty"`
	Allow        bool                 `json:"allow"`
	Deny         []string             `json:"deny,omitempty"`
	Routes       []string             `json:"routes"`
	Excluded     map[string][]string  `json:"excluded,omitempty"`
	Redact       map[string][]string  `json:"redact,omitempty"`
	Obligations  policies.Obligations `json:"obligations"`
	// Reused is true when the engine remembered the decision for an
	// identical input instead of evaluating again.
	Reused bool `json:"reused"`
}

// auditSink writes one JSON line per decision.
type auditSink struct {
	mu sync.Mutex
	w  io.Writer // nil discards
}

// close flushes and closes a file sink; later writes are dropped.
func (a *auditSink) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.w.(*os.File); ok && f != os.Stdout && f != os.Stderr {
		_ = f.Close()
	}
	a.w = nil
}

func openAudit(target string) (*auditSink, error) {
	switch target {
	case "none":
		return &auditSink{}, nil
	case "stdout":
		return &auditSink{w: os.Stdout}, nil
	case "stderr":
		return &auditSink{w: os.Stderr}, nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening policy audit file: %w", err)
	}
	return &auditSink{w: f}, nil
}

func (s *Server) audit(id string, in *policies.Input, d *policies.Decision) {
	if s.cfg.Policy.Audit == "none" {
		return
	}
	rec := auditRecord{
		Time: time.Now().UTC(), DecisionID: id, RequestID: in.Request.ID, Revision: d.Revision,
		Subject: in.Subject, Model: in.Request.Model, DataClass: in.Request.DataClass, Entities: in.Request.Entities, WeakEntities: in.Request.WeakEntities,
		Allow: d.Allow, Routes: d.Routes, Obligations: d.Obligations, Reused: d.Reused,
	}
	for _, r := range d.Deny {
		rec.Deny = append(rec.Deny, r.Code)
	}
	if len(d.Excluded) > 0 {
		rec.Excluded = map[string][]string{}
		for dep, reasons := range d.Excluded {
			for _, r := range reasons {
				rec.Excluded[dep] = append(rec.Excluded[dep], r.Code)
			}
			sort.Strings(rec.Excluded[dep])
		}
	}
	for kind, labels := range d.Redact {
		if len(labels) > 0 {
			if rec.Redact == nil {
				rec.Redact = map[string][]string{}
			}
			rec.Redact[kind] = labels
		}
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	s.auditLog.mu.Lock()
	defer s.auditLog.mu.Unlock()
	if s.auditLog.w != nil {
		_, _ = s.auditLog.w.Write(append(line, '\n'))
	}
}

// describeExcluded lists excluded deployments with their reason codes:
// "openai/gpt-4o (COST_CAP, LOCAL_ONLY)".
func describeExcluded(ex map[string][]policies.Reason) string {
	ids := make([]string, 0, len(ex))
	for id := range ex {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		codes := make([]string, len(ex[id]))
		for j, r := range ex[id] {
			codes[j] = r.Code
		}
		sort.Strings(codes)
		parts[i] = id + " (" + strings.Join(codes, ", ") + ")"
	}
	return strings.Join(parts, "; ")
}

// sig2 rounds to two significant figures. Estimates and latencies enter
// the policy input rounded, so that similar requests make identical inputs
// and the engine can reuse their decision; a 5% rounding is well inside
// the error of the estimates themselves.
func sig2(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p := math.Pow(10, 1-math.Floor(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}

// sig2Up rounds up to two significant figures: a cost estimate never
// rounds below a cap it exceeds.
func sig2Up(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p := math.Pow(10, 1-math.Floor(math.Log10(x)))
	return math.Ceil(x*p-1e-9) / p
}

// notePolicy ends the policy span and counts the decision.
func (s *Server) notePolicy(sp trace.Span, d *policies.Decision, err error) {
	ctx := context.Background()
	m := s.tel.Metrics
	switch {
	case err != nil:
		m.PolicyDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "error")))
		sp.SetStatus(codes.Error, err.Error())
	case d.Allow:
		m.PolicyDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "allow")))
	default:
		m.PolicyDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "deny")))
	}
	if d != nil {
		var reasons []string
		for _, r := range d.Deny {
			reasons = append(reasons, r.Code)
			m.PolicyDenials.Add(ctx, 1, metric.WithAttributes(attribute.String("switchyard.reason", r.Code)))
		}
		for _, rs := range d.Excluded {
			for _, r := range rs {
				reasons = append(reasons, r.Code)
			}
		}
		sp.SetAttributes(attribute.Bool("switchyard.policy.allow", d.Allow), attribute.Bool("switchyard.policy.reused", d.Reused),
			attribute.StringSlice("switchyard.policy.routes", d.Routes), attrReasons.StringSlice(reasons),
			attribute.String("switchyard.policy.revision", d.Revision))
	}
	sp.End()
}

// dailyBudget reports whether any of p's budgets renews daily: the
// soonest a spent budget can be spent again, for Retry-After.
func (s *Server) dailyBudget(p *Principal) bool {
	for _, l := range s.cfg.Quotas.Limits {
		id := map[string]string{"key": p.KeyID, "team": p.Team, "tenant": p.Tenant}[l.Scope]
		if l.USDPerDay > 0 && (l.ID == "" || l.ID == id) {
			return true
		}
	}
	return false
}

// overBudgetOnly reports whether a denial is the budget's doing alone: an
// OVER_BUDGET denial, or no eligible backend because each was excluded
// for OVER_BUDGET.
func overBudgetOnly(d *policies.Decision) bool {
	for _, r := range d.Deny {
		switch r.Code {
		case "OVER_BUDGET":
		case "NO_ELIGIBLE_BACKEND":
			for _, reasons := range d.Excluded {
				for _, x := range reasons {
					if x.Code != "OVER_BUDGET" {
						return false
					}
				}
			}
		default:
			return false
		}
	}
	return len(d.Deny) > 0
}

// sig2Down rounds down to two significant figures: a remaining budget
// never rounds above what is left.
func sig2Down(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p := math.Pow(10, 1-math.Floor(math.Log10(x)))
	return math.Floor(x*p+1e-9) / p
}

// checkDecision refuses results that break the contract, so that a
// custom bundle's mistake fails like an evaluation error, not a crash.
func checkDecision(d *policies.Decision) error {
	switch {
	case !d.Allow && len(d.Deny) == 0:
		return fmt.Errorf("policy denied without a reason (allow is false and deny is empty)")
	case d.Allow && len(d.Routes) == 0:
		return fmt.Errorf("policy allowed the request but named no route")
	}
	return nil
}

// failOpen is policy.on_error: open. The request is routed as configured,
// except that a sensitive request (anything the classifier found, strong
// or weak, or a declared data class other than public) never goes to a
// proprietary backend: failing open must not fail into a leak.
func (s *Server) failOpen(call *call, rec *record, sensitive bool, cause error) (*router.Route, error) {
	s.log.Error("policy evaluation failed; routing without it (policy.on_error: open)", "request_id", rec.requestID, "error", cause)
	if !sensitive {
		return call.route, nil
	}
	rt := &router.Route{Name: call.route.Name}
	for _, d := range call.route.Deployments {
		if d.Kind != config.KindProprietary {
			rt.Deployments = append(rt.Deployments, d)
		}
	}
	if len(rt.Deployments) == 0 {
		return nil, &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "policy_error",
			Message: "The routing policy could not be evaluated and the request carries sensitive data, which may only go to local or self-hosted backends; none serves this model.", Err: cause}
	}
	return rt, nil
}
