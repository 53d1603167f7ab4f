package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/switchyard/switchyard/cache"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/policies"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/router"
)

// The response cache
//
// A route (models[].cache) or a team (cache.teams) opts in, in mode exact
// or semantic. Before the policy runs, the gateway looks for a stored
// answer: under the exact key (tenant, policy revision, route, the request
// normalised), then, in semantic mode, the nearest stored question of the
// same conversation context whose similarity reaches the threshold (the
// last user turn embedded by a local or self-hosted embedding deployment,
// never a proprietary one). The policy input says what was found; the
// decision may forbid caching (obligations.cache: "off"). A stored answer
// is served only when the decision's revision and deployments, in order,
// are those it was made under: where the same policy would send the
// request. A hit reserves no quota, costs nothing and is recorded in the
// ledger as a hit with the cost it saved. A miss is stored once answered,
// JSON or stream, in the background.
//
// The client's X-Switchyard-Cache header says no-store (serve from the
// cache, but do not store this answer) or no-cache (do not serve from the
// cache); every model call's response says hit, miss or bypass (the cache
// was not consulted: not opted in, no-cache, or the policy forbade it).

// HeaderCache is the request's cache directive and the response's outcome.
const HeaderCache = "X-Switchyard-Cache"

// HeaderCacheMatch says how a hit was found: exact, or semantic with its
// similarity ("semantic; similarity=0.9731").
const HeaderCacheMatch = "X-Switchyard-Cache-Match"

// responseCache is the configured cache and who opted in.
type responseCache struct {
	c         *cache.Cache
	routes    map[string]string // route name -> exact, semantic or off
	teams     map[string]string
	embed     *router.Route // the semantic lookups' embedding route (no proprietary deployment); nil: exact only
	threshold float32
	timeout   time.Duration
	// pending holds a channel per key whose answer is being stored (in
	// the background), closed once it is: an identical request meanwhile
	// waits for it rather than asking the upstream again.
	pending sync.Map
}

// storing marks key as being stored until done is called.
func (rc *responseCache) storing(key string) (done func()) {
	ch := make(chan struct{})
	rc.pending.Store(key, ch)
	return func() {
		rc.pending.CompareAndDelete(key, ch)
		close(ch)
	}
}

// maxStoreWait bounds how long a request waits for an identical one's
// answer to be stored.
const maxStoreWait = 100 * time.Millisecond

// awaitStore waits, at most maxStoreWait, for the answer to key being
// stored, and reports whether there was one.
func (rc *responseCache) awaitStore(ctx context.Context, key string) bool {
	v, ok := rc.pending.Load(key)
	if !ok {
		return false
	}
	t := time.NewTimer(maxStoreWait)
	defer t.Stop()
	select {
	case <-v.(chan struct{}):
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// newResponseCache builds the cache, or nil when no route or team opts in.
func newResponseCache(cfg *config.Config, r *router.Router, shared *sharedRedis, log *slog.Logger) (*responseCache, error) {
	rc := &responseCache{routes: map[string]string{}, teams: cfg.Cache.Teams,
		threshold: float32(cfg.Cache.Semantic.Threshold), timeout: cfg.Cache.Semantic.Timeout}
	semantic := false
	for _, m := range cfg.Models {
		if m.Cache != "" {
			rc.routes[m.Name] = m.Cache
		}
		semantic = semantic || m.Cache == "semantic"
	}
	for _, mode := range cfg.Cache.Teams {
		semantic = semantic || mode == "semantic"
	}
	if len(cfg.Cache.Teams) == 0 && !hasOn(rc.routes) {
		return nil, nil
	}
	o := cache.Options{Local: cache.NewMemory(cache.MemoryOptions{MaxEntries: cfg.Cache.MaxEntries,
		MaxEntryBytes: int(cfg.Cache.MaxEntryBytes), MaxBytes: int64(cfg.Cache.MaxBytes), TTL: cfg.Cache.TTL})}
	if cfg.Cache.Store == "redis" {
		o.Shared = cache.NewRedis(shared.bg, "sy", int(cfg.Cache.MaxEntryBytes), cfg.Cache.TTL)
		allowed := map[string]bool{}
		for _, t := range cfg.Cache.ShareSensitive {
			allowed[t] = true
		}
		o.ShareSensitive = func(tenant string) bool { return allowed[tenant] }
	}
	if semantic {
		rt, err := embeddingRoute(cfg, r)
		if err != nil {
			return nil, err
		}
		if rt == nil {
			log.Warn("response cache: semantic mode without an embedding model: only exact matches are served " +
				"(set cache.semantic.embedding_model to an embeddings route with a local or self-hosted deployment)")
		} else {
			rc.embed = rt
			o.Index = cache.NewIndex(cache.IndexOptions{MaxVectors: cfg.Cache.MaxEntries})
		}
	}
	rc.c = cache.New(o)
	if o.Index != nil && o.Shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := rc.c.Rebuild(ctx)
		cancel()
		if err != nil {
			log.Warn("response cache: the semantic index could not be rebuilt from Redis", "error", err)
		} else if n > 0 {
			log.Info("response cache: semantic index rebuilt from Redis", "entries", n)
		}
	}
	return rc, nil
}

func hasOn(m map[string]string) bool {
	for _, v := range m {
		if v != "off" {
			return true
		}
	}
	return false
}

// embeddingRoute is the route that embeds lookup texts, its proprietary
// deployments left out: cache.semantic.embedding_model, or the first route
// a local-engine embedding model serves. It is an error when the named
// route has no local or self-hosted deployment.
func embeddingRoute(cfg *config.Config, r *router.Router) (*router.Route, error) {
	name := cfg.Cache.Semantic.EmbeddingModel
	if name == "" {
		embeds := map[string]bool{}
		for _, m := range cfg.LocalEngine.Models {
			if m.Embeddings {
				embeds[m.Name] = true
			}
		}
		for _, rt := range r.Routes() {
			for _, d := range rt.Deployments {
				if d.Kind == "local" && embeds[d.Model] {
					name = rt.Name
					break
				}
			}
			if name != "" {
				break
			}
		}
		if name == "" {
			return nil, nil
		}
	}
	rt, ok := r.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("cache.semantic.embedding_model: no model route %q", name)
	}
	out := &router.Route{Name: rt.Name}
	for _, d := range rt.Deployments {
		if d.Kind != "proprietary" {
			out.Deployments = append(out.Deployments, d)
		}
	}
	if len(out.Deployments) == 0 {
		return nil, fmt.Errorf("cache.semantic.embedding_model: route %q has no local or self-hosted deployment; "+
			"a cache lookup never sends text to a proprietary API", name)
	}
	return out, nil
}

// mode is the cache mode for a call: exact, semantic or "" (not cached).
// Only chat calls are cached, whatever their ingress, except those a
// native backend may take in the client's own format (its features the
// translation drops are not in the key) and those asking for logprobs
// (a stream's replay does not carry them). A request holding sensitive
// data is matched exactly only: a similar question could hold someone
// else's data.
func (rc *responseCache) mode(call *call, p *Principal) string {
	if rc == nil || call.op != providers.OpChat || call.native != nil || gjson.GetBytes(call.body, "logprobs").Bool() {
		return ""
	}
	m, ok := rc.routes[call.route.Name]
	if !ok {
		m = rc.teams[p.Team]
	}
	if m == "off" {
		return ""
	}
	if m == "semantic" && rc.embed == nil {
		return "exact"
	}
	return m
}

// cacheProbe is what the cache found for a request before the policy
// decided, and what it will need to store the answer.
type cacheProbe struct {
	mode      string // exact or semantic
	noStore   bool   // the client said no-store
	noLookup  bool   // the client said no-cache
	sensitive bool   // sensitive data found, or a data class other than public declared
	revision  string
	key       string
	lookup    cache.Lookup // semantic partition (and text)
	vector    []float32    // the lookup text's embedding
	found     *cache.Entry
	match     string // exact or semantic
	sim       float32
	// estimate is the request's prompt estimate as the policy saw it, on
	// the route's deployments named by estimateFor, for the entry.
	estimate    int64
	estimateFor string
}

// view is the probe as the policy sees it.
func (pr *cacheProbe) view() policies.Cache {
	if pr == nil {
		return policies.Cache{}
	}
	v := policies.Cache{Enabled: !pr.noLookup || !pr.noStore, Mode: pr.mode, Available: pr.found != nil}
	if pr.found != nil {
		v.Match, v.Similarity = pr.match, math.Floor(float64(pr.sim)*100)/100
	}
	return v
}

// probeCache looks for a stored answer to call; nil when the call is not
// cached.
func (s *Server) probeCache(c *fiber.Ctx, call *call, p *Principal, rec *record) *cacheProbe {
	mode := s.cache.mode(call, p)
	if mode == "" {
		return nil
	}
	directive := strings.ToLower(c.Get(HeaderCache))
	pr := &cacheProbe{mode: mode, noStore: strings.Contains(directive, "no-store"),
		noLookup: strings.Contains(directive, "no-cache"), revision: s.policy.Status().Revision}
	dc := strings.ToLower(c.Get(HeaderDataClass)) // as the policy reads it
	pr.sensitive = len(call.findings.Fields) > 0 || (dc != "" && dc != "public")
	if pr.sensitive {
		// Matched exactly only, never embedded: a similar question could
		// carry someone else's data, and its answer with it.
		pr.mode = "exact"
	}
	if pr.noLookup && pr.noStore {
		return pr
	}
	sp := s.child(rec, "cache.lookup")
	defer sp.End()
	req := cache.Request{Tenant: p.Tenant, Revision: pr.revision, Operation: string(call.op), Route: call.route.Name, Body: call.body}
	key, err := cache.ExactKey(req)
	if err != nil {
		return nil
	}
	pr.key = key
	pr.estimateFor = call.estimateSignature() // on the route looked up, before the decision narrows it
	ctx, cancel := context.WithTimeout(rec.ctx, s.cfg.Quotas.Redis.Timeout*2+s.cache.timeout)
	defer cancel()
	if !pr.noLookup {
		e, err := s.cache.c.Get(ctx, key)
		if err == nil && e == nil && s.cache.awaitStore(ctx, key) {
			e, err = s.cache.c.Get(ctx, key) // stored meanwhile
		}
		if err == nil && e != nil && e.Tenant == p.Tenant {
			pr.found, pr.match, pr.sim = e, "exact", 1
			if e.PromptEstimate > 0 && e.EstimateFor == pr.estimateFor {
				// The same request: its token count for the policy
				// input need not be made again (the most of a hit's
				// time otherwise).
				call.knownPrompt = e.PromptEstimate
			}
			return pr
		}
	}
	if pr.mode != "semantic" {
		return pr
	}
	lookup, ok := cache.SemanticLookup(req)
	if !ok {
		return pr
	}
	vec, embedder, err := s.embedLookup(ctx, c.Get, call, p, rec, lookup.Text)
	if err != nil {
		s.log.Debug("response cache: the lookup text could not be embedded", "request_id", rec.requestID)
		return pr
	}
	// Vectors of different embedding models are never compared.
	lookup.Partition += "/" + embedder
	pr.lookup, pr.vector = lookup, vec
	if pr.noLookup {
		return pr
	}
	if e, sim, err := s.cache.c.Nearest(ctx, lookup.Partition, vec); err == nil && e != nil && e.Tenant == p.Tenant && sim >= s.cache.threshold {
		pr.found, pr.match, pr.sim = e, "semantic", sim
	}
	return pr
}

// embedLookup embeds a lookup text on the cache's embedding route, on the
// deployments the policy allows for this request's data (never a
// proprietary one: the route holds none), and names the deployment that
// embedded it. The decision is audited like any.
func (s *Server) embedLookup(ctx context.Context, header func(string, ...string) string, orig *call, p *Principal, rec *record, text string) ([]float32, string, error) {
	body, err := sjson.SetBytes([]byte(`{"encoding_format":"float"}`), "model", s.cache.embed.Name)
	if err == nil {
		body, err = sjson.SetBytes(body, "input", text)
	}
	if err != nil {
		return nil, "", err
	}
	ec := &call{op: providers.OpEmbeddings, model: s.cache.embed.Name, route: s.cache.embed, body: body, findings: orig.findings}
	in := s.policyInput(header, ec, p, rec.requestID)
	d, err := s.policy.Decide(ctx, in)
	if err != nil {
		return nil, "", err
	}
	s.audit("dec_"+strings.TrimPrefix(newRequestID(), "req_"), in, d)
	if !d.Allow {
		return nil, "", errors.New("the policy allows no embedding deployment for this request")
	}
	rt, err := s.routeFor(ec, d)
	if err != nil {
		return nil, "", err
	}
	res, err := s.router.Do(auxiliary(ctx, providers.OpEmbeddings), rt, &providers.Request{Operation: providers.OpEmbeddings, Body: body, RequestID: rec.requestID})
	if err != nil {
		return nil, "", err
	}
	emb := gjson.GetBytes(res.Response.Body, "data.0.embedding")
	if !emb.IsArray() {
		return nil, "", errors.New("the embedding deployment answered no float embedding")
	}
	arr := emb.Array()
	vec := make([]float32, len(arr))
	for i, v := range arr {
		vec[i] = float32(v.Float())
	}
	return vec, res.Deployment.ID(), nil
}

// cacheOutcome is what the cache does for a decided request.
type cacheOutcome struct {
	probe *cacheProbe
	// hit is the stored answer to serve; nil for a miss.
	hit *cache.Entry
	// store is true when the answer is to be stored.
	store    bool
	routeSet string
	revision string
}

// decided applies the policy's decision to the probe.
func (pr *cacheProbe) decided(v verdict) cacheOutcome {
	if pr == nil || v.cacheOff {
		return cacheOutcome{}
	}
	ids := make([]string, len(v.route.Deployments))
	for i, d := range v.route.Deployments {
		ids[i] = d.ID()
	}
	o := cacheOutcome{probe: pr, routeSet: cache.RouteSet(append(ids, v.obligations)), revision: v.revision}
	if e := pr.found; e != nil && !pr.noLookup && e.Revision == v.revision && e.RouteSet == o.routeSet {
		o.hit = e
		return o
	}
	o.store = !pr.noStore && pr.key != "" && v.revision == pr.revision
	return o
}

// header is the response's X-Switchyard-Cache value.
func (o cacheOutcome) header() string {
	switch {
	case o.probe == nil || (o.probe.noLookup && !o.store):
		return "bypass"
	case o.hit != nil:
		return "hit"
	case o.probe.noLookup:
		return "bypass"
	}
	return "miss"
}

// serveCached answers a request from a stored answer: JSON, or replayed
// as a stream, in the client's format, at no cost.
func (s *Server) serveCached(c *fiber.Ctx, call *call, rec *record, o cacheOutcome) error {
	e := o.hit
	match := o.probe.match
	if match == "semantic" {
		match += "; similarity=" + strconv.FormatFloat(float64(o.probe.sim), 'f', 4, 32)
	}
	c.Set(HeaderCache, "hit")
	c.Set(HeaderCacheMatch, match)
	c.Set(HeaderAttempts, "0")
	rec.cacheHit, rec.cacheSaved = true, pricing.Cost(e.CostPicoUSD)
	rec.backend, rec.upstream = e.Backend, e.UpstreamModel
	d := &router.Deployment{Backend: e.Backend, Kind: e.Kind, Model: e.UpstreamModel}
	usage := &providers.Usage{PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens, Estimated: e.Estimated}
	id := "chatcmpl-" + strings.TrimPrefix(newRequestID(), "req_")
	created := time.Now().Unix()
	answer, _ := sjson.SetBytes(e.Answer, "id", id)
	answer, _ = sjson.SetBytes(answer, "created", created)
	if call.stream {
		// Another format renders the usage from the usage chunk; OpenAI's
		// has one only when the client asked.
		chunks, err := cache.Replay(answer, id, created, call.includeUsage || call.ingress != nil)
		if err != nil {
			return err
		}
		rec.usage, rec.cost = usage, 0
		return s.relayStream(c, call, rec, d, &replayStream{chunks: chunks, usage: usage}, func() {}, nil)
	}
	noteResponse(rec, answer)
	rec.usage, rec.cost = usage, 0
	body := answer
	if call.ingress != nil {
		var err error
		if body, err = call.ingress.answer(answer, usage); err != nil {
			return err
		}
	}
	setBackendHeaders(c, d)
	c.Set(HeaderCost, pricing.Cost(0).String())
	if usage.Estimated {
		c.Set(HeaderEstimated, "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(http.StatusOK).Send(body)
}

// replayStream is a stored answer's chunks as a providers.Stream.
type replayStream struct {
	chunks [][]byte
	usage  *providers.Usage
	i      int
}

var _ providers.Stream = (*replayStream)(nil)

func (r *replayStream) Recv() (providers.Event, error) {
	if r.i >= len(r.chunks) {
		return providers.Event{}, io.EOF
	}
	data := r.chunks[r.i]
	r.i++
	if r.i == len(r.chunks) && gjson.GetBytes(data, "usage.prompt_tokens").Exists() {
		return providers.Event{Data: data, Usage: r.usage, UsageOnly: true}, nil
	}
	return providers.Event{Data: data}, nil
}

func (r *replayStream) Close() error { return nil }

// storeAnswer stores a JSON answer, in the background.
func (s *Server) storeAnswer(o cacheOutcome, p *Principal, call *call, d *router.Deployment, answer []byte, usage *providers.Usage, cost pricing.Cost) {
	if !o.store || p == nil {
		return
	}
	for _, f := range gjson.GetBytes(answer, "choices.#.finish_reason").Array() {
		if f.Str != "stop" && f.Str != "tool_calls" && f.Str != "length" {
			return // cut short or filtered: not an answer to repeat
		}
	}
	pr := o.probe
	e := &cache.Entry{
		Key: pr.key, Tenant: p.Tenant, Route: call.route.Name, Revision: o.revision, RouteSet: o.routeSet,
		Partition: pr.lookup.Partition, Vector: pr.vector, Answer: append([]byte(nil), answer...),
		PromptTokens: usage.PromptTokens, CompletionTokens: usage.CompletionTokens, Estimated: usage.Estimated, CostPicoUSD: int64(cost),
		Backend: d.Backend, Kind: d.Kind, UpstreamModel: d.Model, Sensitive: pr.sensitive,
		PromptEstimate: pr.estimate, EstimateFor: pr.estimateFor,
		Created: time.Now().UTC(),
	}
	done := s.cache.storing(e.Key)
	s.background.goOrRun(func() {
		defer done()
		if _, err := cache.Replay(e.Answer, "check", 0, true); err != nil {
			return // an answer a stream could not replay (a custom tool call…) is not stored
		}
		if !e.Sensitive {
			// Sensitive data in the answer (the upstream's, not the
			// client's) keeps the entry in this replica too.
			if choices := gjson.GetBytes(e.Answer, "choices"); len(s.classifier.ScanRequest([]byte(choices.Raw)).Fields) > 0 {
				e.Sensitive = true
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := s.cache.c.Put(ctx, e); err != nil && !errors.Is(err, cache.ErrTooLarge) {
			s.log.Debug("response cache: an answer could not be stored", "error", err) // Redis down: not worth a line per request
		}
	})
}

// cacheRecorder rebuilds a streamed answer to store it once the stream
// ended cleanly.
type cacheRecorder struct {
	outcome cacheOutcome
	p       *Principal
	call    *call
	asm     cache.Assembler
	limit   int // cache.max_entry_bytes: a longer answer is not kept
	broken  bool
}

func (r *cacheRecorder) add(data []byte) {
	if r == nil || r.broken {
		return
	}
	// The answer's size, not the chunks': each carries ~150 bytes of
	// envelope for a token or two of text.
	if r.asm.Add(data) != nil || r.asm.Size() > r.limit {
		r.broken = true
		r.asm = cache.Assembler{} // let go of what it held
	}
}

func (r *cacheRecorder) done(s *Server, d *router.Deployment, usage *providers.Usage, cost pricing.Cost) {
	if r == nil || r.broken || !r.asm.Complete() {
		return
	}
	answer, err := r.asm.Completion()
	if err != nil {
		return
	}
	if !gjson.GetBytes(answer, "usage").Exists() && usage != nil {
		// The upstream streamed no usage: the settled estimate goes with
		// the answer, so that a hit reports it too.
		answer, _ = sjson.SetBytes(answer, "usage", map[string]int64{"prompt_tokens": usage.PromptTokens,
			"completion_tokens": usage.CompletionTokens, "total_tokens": usage.PromptTokens + usage.CompletionTokens})
	}
	s.storeAnswer(r.outcome, r.p, r.call, d, answer, usage, cost)
}

// cachePurge is DELETE /v1/switchyard/cache?tenant=&route=&older_than=:
// drops the stored answers that match every parameter given (older_than
// is a duration, e.g. 24h), here and in the shared store.
func (s *Server) cachePurge(c *fiber.Ctx) error {
	if s.cache == nil {
		return c.JSON(fiber.Map{"purged": 0})
	}
	f := cache.Filter{Tenant: c.Query("tenant"), Route: c.Query("route")}
	if v := c.Query("older_than"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return invalidRequest("invalid_value", "older_than", "older_than must be a duration such as 24h.")
		}
		f.Before = time.Now().Add(-d)
	}
	if f == (cache.Filter{}) && c.Query("all") != "true" {
		return invalidRequest("missing_required_parameter", "tenant", "Name a tenant, a route or older_than, or all=true to purge everything.")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := s.cache.c.Purge(ctx, f)
	if err != nil {
		return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "cache_unavailable",
			Message: "The shared cache store could not be purged entirely; purged " + strconv.Itoa(n) + ".", Err: err}
	}
	return c.JSON(fiber.Map{"purged": n})
}
