package dashboards_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// Every panel query of every dashboard, evaluated by a real Prometheus
// (run on the shipped deploy/prometheus/prometheus.yml) scraping a real
// gateway after synthetic traffic, returns data; the spend Prometheus sees
// is what the responses and the cost ledger report; and the panels that
// split traffic by backend kind split it as the responses say it went,
// a model name served by a self-hosted pool and a proprietary API
// included.
func TestDashboardsAgainstPrometheus(t *testing.T) {
	bin := prometheusBinary(t)
	gw := startGateway(t)
	prom := startPrometheus(t, bin, gw.host)
	prom.waitScraped(t, gw.host)

	// Two waves of the same traffic. Wave 1 creates every series; t1 is
	// the first scrape that holds all of it and t2 the first that holds
	// all of wave 2, so increase() and rate() see counters grow rather
	// than appear, and a range from just before t1 to t2 holds exactly
	// wave 2.
	var tr traffic
	tr.wave(t, gw, 1)
	t1 := prom.waitSettled(t, &tr.total)
	w2 := tr.wave(t, gw, 2)
	t2 := prom.waitSettled(t, &tr.total)
	t.Logf("traffic: %d requests, %d answered, %d over quota, %d tokens, cost %s USD; wave 2 scraped %dms after wave 1",
		tr.total.requests, tr.total.answered, tr.total.rejected, tr.total.tokens, picoString(tr.total.costPico), t2-t1)
	require.Equal(t, 4, tr.total.rejected, "team qa: 2 of its 6 requests pass")

	t.Run("cost", func(t *testing.T) {
		v, ok := prom.scalar(t, "sum(switchyard_cost_USD_total)", t2)
		require.True(t, ok)
		assert.InDelta(t, float64(tr.total.costPico)/1e12, v, 1e-9, "Prometheus's spend is the sum of the responses' X-Switchyard-Cost-Usd")
		assert.Equal(t, picoString(tr.total.costPico), picoString(gw.ledgerTotal(t, tr.start, tr.total.answered)),
			"the cost ledger's total is the sum of the responses' costs")
	})

	for _, name := range dashboardFiles {
		d := loadDashboard(t, name)
		vars := panelVars(d, "5m", "1m")
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				t.Run(fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(name, ".json"), p.Title, tg.RefID), func(t *testing.T) {
					expr := substitute(t, tg.Expr, vars)
					res, err := prom.query(expr, t2)
					require.NoError(t, err, "%s\n%s", expr, prom.log)
					require.Equal(t, "success", res.Status, "%s: %s %s", expr, res.ErrorType, res.Error)
					require.True(t, res.hasData(), "no data for %s: %s", expr, res.Data.Result)
					t.Logf("%s", res.Data.Result)
				})
			}
		}
	}

	t.Run("splits", func(t *testing.T) { checkSplits(t, prom, t1, t2, w2) })
	if t.Failed() {
		t.Logf("prometheus log:\n%s", prom.log)
	}
}

// panelVars are Grafana's variables for a dashboard's queries: the given
// range and rate interval, every "All" variable at its all value.
func panelVars(d dashboard, rng, rateInterval string) map[string]string {
	vars := map[string]string{
		"__rate_interval": rateInterval, "__range": rng, "__interval": "15s", "__range_s": "300", "__interval_ms": "15000",
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.IncludeAll {
			vars[v.Name] = v.AllValue
		}
	}
	return vars
}

// Latency the test's backends guarantee: the proprietary API serving the
// self-hosted pool's model ("cloud") answers after at least cloudDelay;
// every self-hosted backend at once. Each bound below is a bucket boundary
// under cloudDelay (telemetry/metrics.go), so a quantile of self-hosted
// calls stays at or below it and one that counts the cloud's calls lands
// above.
const (
	cloudDelay      = 1300 * time.Millisecond
	durationBound   = 1.28 // gen_ai_client_operation_duration_seconds
	firstChunkBound = 1.0  // gen_ai_client_operation_time_to_first_chunk_seconds
)

// checkSplits evaluates the panels that split traffic by backend kind over
// exactly wave 2 (the range from just before t1 to t2, at t2) and compares
// them with what wave 2's responses reported.
//
// With a range starting 1ms before the scrape at t1 and evaluated at the
// scrape at t2, Prometheus's increase() extrapolates by at most 1ms, and
// rate() over that range is the counter's growth divided by t2-t1 exactly.
func checkSplits(t *testing.T, prom *prometheus, t1, t2 int64, w *tally) {
	sampled := float64(t2-t1) / 1000
	rng := fmt.Sprintf("%dms", t2-t1+1)
	perMinute := func(v float64) float64 { return v * sampled / 60 } // a per-minute rate back to a count
	perHour := func(v float64) float64 { return v * sampled / 3600 }
	ratio := func(num, den float64) float64 { return num / den }

	local := func(kind string) bool { return kind == "local" || kind == "selfhosted" }
	var localReqs, reachedReqs, localTokens, allTokens float64
	reqs, usd := map[string]float64{}, map[string]float64{}
	for kind, k := range w.byKind {
		reqs[kind] = float64(k.requests)
		if k.answered > 0 {
			usd[kind] = float64(k.costPico) / 1e12
		}
		if kind != "none" {
			reachedReqs += float64(k.requests)
		}
		allTokens += float64(k.tokens)
		if local(kind) {
			localReqs += float64(k.requests)
			localTokens += float64(k.tokens)
		}
	}
	errs := map[string]float64{}
	for k, n := range w.errors {
		errs[k] = float64(n)
	}
	redactions := map[string]float64{}
	for k, n := range w.redactions {
		redactions[k] = float64(n)
	}
	require.Positive(t, localTokens, "wave 2 sent self-hosted traffic")
	require.Less(t, localTokens, allTokens, "wave 2 sent proprietary traffic")

	// quantiles checks a latency panel: one series per kind that answered,
	// self-hosted at or below bound, and the proprietary p99 (the cloud's
	// calls are more than 1% of them) above.
	quantiles := func(bound float64) func(*testing.T, string, []sample) {
		return func(t *testing.T, expr string, got []sample) {
			byKind := map[string]float64{}
			for _, s := range got {
				byKind[s.labels["switchyard_backend_kind"]] = s.value
			}
			require.ElementsMatch(t, []string{"selfhosted", "proprietary"}, slices.Collect(maps.Keys(byKind)), "one series per kind: %v", got)
			assert.LessOrEqual(t, byKind["selfhosted"], bound, "no self-hosted call is as slow as the cloud")
			assert.Greater(t, byKind["selfhosted"], 0.0)
			if strings.HasPrefix(expr, "histogram_quantile(0.99,") {
				assert.Greater(t, byKind["proprietary"], bound, "the cloud's calls are among the proprietary ones")
			}
		}
	}
	counts := func(want map[string]float64, scale func(float64) float64, keys ...string) func(*testing.T, string, []sample) {
		return func(t *testing.T, _ string, got []sample) {
			have := map[string]float64{}
			for _, s := range got {
				var k []string
				for _, l := range keys {
					k = append(k, s.labels[l])
				}
				have[strings.Join(k, "/")] = scale(s.value)
			}
			assertNear(t, want, have)
		}
	}
	one := func(want float64) func(*testing.T, string, []sample) {
		return func(t *testing.T, _ string, got []sample) {
			require.Len(t, got, 1)
			assert.InDelta(t, want, got[0].value, 1e-9)
		}
	}

	checks := []struct {
		dashboard, title string
		check            func(t *testing.T, expr string, got []sample)
	}{
		{"cost.json", "Local share of requests", one(ratio(localReqs, reachedReqs))},
		{"cost.json", "Local share of tokens", one(ratio(localTokens, allTokens))},
		{"cost.json", "Spend by backend kind", counts(usd, perHour, "switchyard_backend_kind")},
		{"traffic.json", "Requests per minute by backend kind", counts(reqs, perMinute, "switchyard_backend_kind")},
		{"traffic.json", "Errors per minute by outcome", counts(errs, perMinute, "outcome", "switchyard_backend_kind")},
		{"traffic.json", "Request duration by backend kind", quantiles(durationBound)},
		{"traffic.json", "Time to first chunk by backend kind (streams)", quantiles(firstChunkBound)},
		{"policy.json", "Redactions per minute by entity", counts(redactions, perMinute, "switchyard_entity", "switchyard_backend_kind")},
	}
	for _, c := range checks {
		d := loadDashboard(t, c.dashboard)
		vars := panelVars(d, rng, rng)
		i := slices.IndexFunc(allPanels(d.Panels), func(p panel) bool { return p.Title == c.title })
		require.GreaterOrEqual(t, i, 0, "%s has no panel %q", c.dashboard, c.title)
		p := allPanels(d.Panels)[i]
		require.NotEmpty(t, p.Targets)
		for _, tg := range p.Targets {
			t.Run(fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(c.dashboard, ".json"), c.title, tg.RefID), func(t *testing.T) {
				expr := substitute(t, tg.Expr, vars)
				got, err := prom.vector(expr, t2)
				require.NoError(t, err, expr)
				t.Logf("%s = %v", expr, got)
				c.check(t, expr, got)
			})
		}
	}
}

// assertNear compares series values with what the responses say, to
// within Prometheus's float arithmetic and its 1ms extrapolation. A series
// absent from want did not grow.
func assertNear(t *testing.T, want, got map[string]float64) {
	t.Helper()
	for k, w := range want {
		if _, ok := got[k]; !ok && w != 0 {
			t.Errorf("no series %s (want %v): %v", k, w, got)
		}
	}
	for k, g := range got {
		w := want[k]
		assert.InDelta(t, w, g, 1e-6+1e-3*math.Abs(w), "%s: want %v, got %v", k, w, g)
	}
}

// prometheusBinary is the prometheus server, or a skip (a failure with
// SWITCHYARD_REQUIRE_PROMETHEUS=1).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/prometheus"); serr == nil {
			return "/usr/bin/prometheus"
		}
		msg := "prometheus is not installed (Debian: apt-get install prometheus): the dashboards' queries are not evaluated"
		if os.Getenv("SWITCHYARD_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal(msg + ", and SWITCHYARD_REQUIRE_PROMETHEUS=1")
		}
		t.Skip(msg)
	}
	return bin
}

var varRef = regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`)

// substitute does what Grafana does to a query: its variables take their
// values. "$1" in label_replace is not a variable.
func substitute(t *testing.T, expr string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("unknown variable $%s in %s", name, expr)
		}
		return v
	})
}

// --- the gateway -----------------------------------------------------------

const adminKey = "sk-admin-dashboards"

// The teams, each with its own virtual key.
var teams = []struct{ tenant, team string }{
	{"acme", "search"}, {"acme", "research"}, {"acme", "interns"}, {"acme", "qa"}, {"globex", "finance"},
}

func keyOf(team string) string { return "sk-" + team }

type gatewayUnderTest struct {
	base string // http://host:port/v1
	host string
}

// startGateway serves a gateway with a self-hosted pool, a proprietary API,
// a dead backend behind a fallback, a failing one, several teams, an admin
// key and a quota, all on loopback; and one model, llama3.3, that a second
// self-hosted pool (edge) and a slow proprietary API (cloud) both serve
// under the same upstream name: public requests go to the cloud (the
// route's order), confidential ones stay on the edge (the policy's
// LOCAL_ONLY).
func startGateway(t *testing.T) *gatewayUnderTest {
	t.Helper()
	self := newUpstream(t, 2*time.Millisecond, 20*time.Millisecond, false)
	prop := newUpstream(t, 10*time.Millisecond, 40*time.Millisecond, false)
	flaky := newUpstream(t, 0, time.Millisecond, true)
	dead := deadURL(t)
	edge := newUpstream(t, 0, 2*time.Millisecond, false)
	cloud := newUpstream(t, cloudDelay, cloudDelay+100*time.Millisecond, false)

	var b strings.Builder
	fmt.Fprintf(&b, `server: {listen: "127.0.0.1:0", shutdown_timeout: 5s, stream_keepalive: 50ms}
log: {level: error}
policy: {audit: none}
backends:
  - {name: vllm, kind: selfhosted, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.05, output_per_mtok: 0.1},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
  - {name: openai, kind: proprietary, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.15, output_per_mtok: 0.6},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
  - {name: gone, kind: selfhosted, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.05, output_per_mtok: 0.1},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
  - {name: flaky, kind: selfhosted, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.05, output_per_mtok: 0.1},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
  - {name: edge, kind: selfhosted, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.02, output_per_mtok: 0.04},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
  - {name: cloud, kind: proprietary, base_url: %q, api_key: sk-up, price: {input_per_mtok: 0.6, output_per_mtok: 0.8},
     timeouts: {connect: 1s, first_byte: 5s, between_chunks: 5s}}
models:
  - {name: llama3.2, deployments: [{backend: vllm}]}
  - {name: qwen, deployments: [{backend: vllm}]}
  - {name: gpt-4o-mini, deployments: [{backend: openai}]}
  - {name: resilient, deployments: [{backend: gone, model: qwen2}, {backend: openai, model: gpt-4o}]}
  - {name: broken, deployments: [{backend: flaky, model: qwen-broken}]}
  - {name: llama3.3, deployments: [{backend: cloud, model: llama-3.3-70b}, {backend: edge, model: llama-3.3-70b}]}
admin:
  keys: [{id: ops, sha256: %s}]
quotas:
  limits:
    - {scope: team, id: qa, requests_per_minute: 2}
keys:
`, self.URL+"/v1", prop.URL+"/v1", dead, flaky.URL+"/v1", edge.URL+"/v1", cloud.URL+"/v1", gateway.HashKey(adminKey))
	for _, tm := range teams {
		fmt.Fprintf(&b, "  - {id: %s-key, sha256: %s, tenant: %s, team: %s}\n", tm.team, gateway.HashKey(keyOf(tm.team)), tm.tenant, tm.team)
	}
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return "", false })
	require.NoError(t, err, b.String())

	srv, err := gateway.New(cfg, gateway.Options{Version: "dashboards-test"})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &gatewayUnderTest{base: "http://" + ln.Addr().String() + "/v1", host: ln.Addr().String()}
}

// newUpstream is an OpenAI-compatible backend that answers every chat
// completion, streamed or not, with usage, after a random delay in
// [min, max); or, failing, a 500.
func newUpstream(t *testing.T, minDelay, maxDelay time.Duration, failing bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Stream   bool   `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		time.Sleep(minDelay + rand.N(maxDelay-minDelay))
		if failing {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":{"message":"boom","type":"server_error"}}`)
			return
		}
		prompt := 20
		for _, m := range req.Messages {
			prompt += len(m.Content)
		}
		completion := 5 + rand.N(60)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":%q,`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
				req.Model, prompt, completion, prompt+completion)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		event := func(s string) {
			fmt.Fprintf(w, "data: %s\n\n", s)
			f.Flush()
		}
		chunk := func(delta, finish string) string {
			return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":%q,`+
				`"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`, req.Model, delta, finish)
		}
		event(chunk(`{"role":"assistant","content":"he"}`, "null"))
		for range 3 {
			time.Sleep(time.Millisecond + rand.N(5*time.Millisecond))
			event(chunk(`{"content":"l"}`, "null"))
		}
		event(chunk(`{}`, `"stop"`))
		event(fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[],`+
			`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, req.Model, prompt, completion, prompt+completion))
		event("[DONE]")
	}))
	t.Cleanup(s.Close)
	return s
}

func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1"
}

// ledgerTotal is the cost ledger's total since from, once it holds n
// requests (appends are asynchronous).
func (g *gatewayUnderTest) ledgerTotal(t *testing.T, from time.Time, n int) int64 {
	t.Helper()
	var totals struct {
		Totals []struct {
			Requests int    `json:"requests"`
			CostUSD  string `json:"cost_usd"`
		} `json:"totals"`
	}
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/switchyard/costs?from="+url.QueryEscape(from.Format(time.RFC3339Nano)), nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.NoError(t, json.Unmarshal(body, &totals), "%s", body)
		return len(totals.Totals) == 1 && totals.Totals[0].Requests == n
	}, 5*time.Second, 20*time.Millisecond, "the ledger never held %d requests: %+v", n, totals)
	c, err := parsePico(totals.Totals[0].CostUSD)
	require.NoError(t, err)
	return c
}

// --- traffic ---------------------------------------------------------------

type traffic struct {
	start time.Time
	total tally
}

// tally is what a set of requests did, by the responses: the figures
// Prometheus must show.
type tally struct {
	requests int
	answered int   // requests that reached a backend and were billed
	rejected int   // 429s from the quota
	reached  int   // requests that reached a backend: one duration each
	streams  int   // streams answered: one time to first chunk each
	costPico int64 // the sum of the costs the responses reported
	tokens   int64 // prompt plus completion tokens, as the responses reported them

	byKind     map[string]*kindTally // by the kind of backend that answered or failed last; none: refused before any
	errors     map[string]int        // "outcome/kind" for outcomes other than ok
	redactions map[string]int        // "entity/kind"
}

type kindTally struct {
	requests, answered int
	costPico, tokens   int64
}

// request is one request of a wave and what it must get.
type request struct {
	team, model string
	stream      bool
	content     string
	status      int    // 0: a 5xx; -1: 200 or the quota's 429
	kind        string // the kind of the backend that answers, or fails last
	class       string // X-Switchyard-Data-Class
	redacts     string // the entity masked before it leaves
}

// response is what the gateway answered.
type response struct {
	status, attempts int
	kind             string // X-Switchyard-Backend-Kind
	costPico         int64
	tokens           int64
}

func (w *tally) add(r request, resp response) {
	if w.byKind == nil {
		w.byKind, w.errors, w.redactions = map[string]*kindTally{}, map[string]int{}, map[string]int{}
	}
	w.requests++
	kind := "none"
	if resp.attempts > 0 {
		kind = r.kind
		w.reached++
	}
	k := w.byKind[kind]
	if k == nil {
		k = &kindTally{}
		w.byKind[kind] = k
	}
	k.requests++
	switch {
	case resp.status >= 500:
		w.errors["server_error/"+kind]++
	case resp.status >= 400:
		w.errors["client_error/"+kind]++
	}
	if resp.status == http.StatusTooManyRequests {
		w.rejected++
	}
	if resp.status != http.StatusOK {
		return
	}
	w.answered++
	k.answered++
	w.costPico += resp.costPico
	k.costPico += resp.costPico
	w.tokens += resp.tokens
	k.tokens += resp.tokens
	if r.stream {
		w.streams++
	}
	if r.redacts != "" {
		w.redactions[r.redacts+"/"+kind]++
	}
}

// wave sends one round of requests across teams, models and kinds: unary
// and streamed, a fallback, a policy denial, a redaction, a failing
// backend, one model name on a self-hosted pool and a proprietary API, and
// quota rejections. Every wave creates the same series. It returns the
// wave's tally and adds it to the total.
func (tr *traffic) wave(t *testing.T, g *gatewayUnderTest, n int) *tally {
	t.Helper()
	if tr.start.IsZero() {
		tr.start = time.Now().UTC().Add(-time.Second)
	}
	var reqs []request
	for _, team := range []string{"search", "research", "finance"} {
		for _, model := range []string{"llama3.2", "qwen"} {
			reqs = append(reqs, request{team: team, model: model, content: "hello", status: 200, kind: "selfhosted"})
		}
		reqs = append(reqs,
			request{team: team, model: "gpt-4o-mini", content: "hello", status: 200, kind: "proprietary"},
			request{team: team, model: "qwen", stream: true, content: "stream please", status: 200, kind: "selfhosted"},
			request{team: team, model: "gpt-4o-mini", stream: true, content: "stream please", status: 200, kind: "proprietary"},
		)
	}
	// llama3.3: the same upstream model on the edge (self-hosted) and in
	// the cloud (proprietary). Team search keeps the route's order.
	for _, class := range []string{"public", "confidential"} {
		kind := map[string]string{"public": "proprietary", "confidential": "selfhosted"}[class]
		reqs = append(reqs,
			request{team: "search", model: "llama3.3", content: "summarise the quarter", status: 200, kind: kind, class: class},
			request{team: "search", model: "llama3.3", content: "and the year", status: 200, kind: kind, class: class},
			request{team: "search", model: "llama3.3", stream: true, content: "stream it", status: 200, kind: kind, class: class},
		)
	}
	reqs = append(reqs,
		request{team: "interns", model: "llama3.2", content: "hi", status: 200, kind: "selfhosted"},
		request{team: "interns", model: "llama3.2", stream: true, content: "hi", status: 200, kind: "selfhosted"},
		request{team: "interns", model: "qwen", content: "hi", status: http.StatusForbidden},                                                                // MODEL_NOT_ALLOWED
		request{team: "search", model: "gpt-4o-mini", content: "mail jane.doe@example.com the summary", status: 200, kind: "proprietary", redacts: "EMAIL"}, // EMAIL redacted
		request{team: "research", model: "resilient", content: "fall back", status: 200, kind: "proprietary"},                                               // gone → openai
		request{team: "research", model: "broken", content: "fail", kind: "selfhosted"},                                                                     // 5xx
	)
	// Team qa may send 2 requests a minute, in this order so that every
	// wave makes the same series: in wave 1 "one" and "two" pass and
	// "three" gets a 429, in wave 2 all three do.
	qa := []request{
		{team: "qa", model: "qwen", content: "one", status: -1, kind: "selfhosted"},
		{team: "qa", model: "qwen", stream: true, content: "two", status: -1, kind: "selfhosted"},
		{team: "qa", model: "gpt-4o-mini", content: "three", status: -1, kind: "proprietary"},
	}

	w := &tally{}
	var mu sync.Mutex
	do := func(r request) {
		resp, err := send(g.base, r)
		mu.Lock()
		defer mu.Unlock()
		if !assert.NoError(t, err, "%+v", r) {
			return
		}
		switch r.status {
		case 0:
			assert.GreaterOrEqual(t, resp.status, 500, "%+v", r)
		case -1:
			assert.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, resp.status, "%+v", r)
		default:
			assert.Equal(t, r.status, resp.status, "%+v", r)
		}
		if resp.status == http.StatusOK {
			assert.Equal(t, r.kind, resp.kind, "%+v: the kind of the backend that answered", r)
		}
		w.add(r, resp)
		tr.total.add(r, resp)
	}
	for _, r := range qa {
		do(r)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			do(r)
		}()
	}
	wg.Wait()
	return w
}

// send makes one chat completion and returns what the gateway answered:
// the cost and the tokens from X-Switchyard-Cost-Usd and the body's usage,
// or from a stream's cost comment.
func send(base string, r request) (response, error) {
	body, _ := json.Marshal(map[string]any{
		"model": r.model, "stream": r.stream, "max_tokens": 64,
		"messages": []map[string]string{{"role": "user", "content": r.content}},
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+keyOf(r.team))
	req.Header.Set("Content-Type", "application/json")
	if r.class != "" {
		req.Header.Set(gateway.HeaderDataClass, r.class)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	out := response{status: resp.StatusCode, kind: resp.Header.Get(gateway.HeaderKind)}
	if a := resp.Header.Get(gateway.HeaderAttempts); a != "" {
		if out.attempts, err = strconv.Atoi(a); err != nil {
			return out, fmt.Errorf("%s: %q", gateway.HeaderAttempts, a)
		}
	}
	if resp.StatusCode != http.StatusOK {
		return out, nil
	}
	var usage struct {
		CostUSD          string `json:"cost_usd"`
		PromptTokens     int64  `json:"prompt_tokens"`
		CompletionTokens int64  `json:"completion_tokens"`
	}
	if !r.stream {
		var answer struct {
			Usage *struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(raw, &answer); err != nil || answer.Usage == nil {
			return out, fmt.Errorf("an answer without usage: %s", raw)
		}
		out.tokens = answer.Usage.PromptTokens + answer.Usage.CompletionTokens
		out.costPico, err = parsePico(resp.Header.Get(gateway.HeaderCost))
		return out, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), ": x-switchyard-cost "); ok {
			if err := json.Unmarshal([]byte(rest), &usage); err != nil {
				return out, err
			}
			out.tokens = usage.PromptTokens + usage.CompletionTokens
			out.costPico, err = parsePico(usage.CostUSD)
			return out, err
		}
	}
	return out, fmt.Errorf("stream without a cost comment:\n%s", raw)
}

// parsePico reads a decimal USD amount as pico-dollars, exactly.
func parsePico(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if s == "" || len(frac) > 12 {
		return 0, fmt.Errorf("bad amount %q", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad amount %q: %w", s, err)
	}
	var f int64
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 12-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("bad amount %q: %w", s, err)
		}
	}
	return w*1e12 + f, nil
}

func picoString(p int64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%012d", p/1e12, p%1e12), "0"), ".")
}

// --- prometheus ------------------------------------------------------------

// exampleScrapeConfig is the scrape configuration the repository ships.
var exampleScrapeConfig = filepath.Join("..", "deploy", "prometheus", "prometheus.yml")

// The shipped scrape configuration is valid, by promtool (Debian's
// prometheus package ships it).
func TestPrometheusExample(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SWITCHYARD_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal("promtool is not installed (Debian: apt-get install prometheus), and SWITCHYARD_REQUIRE_PROMETHEUS=1")
		}
		t.Skip("promtool is not installed (Debian: apt-get install prometheus)")
	}
	out, err := exec.Command(promtool, "check", "config", exampleScrapeConfig).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
}

type prometheus struct {
	url string
	log *syncBuffer
}

// scrapeConfig is the shipped scrape configuration with its target
// replaced by target and every interval shortened to 1s; the rest (the
// job, the metrics path, the relabeling) as shipped.
func scrapeConfig(t *testing.T, target string) []byte {
	t.Helper()
	raw, err := os.ReadFile(exampleScrapeConfig)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	global, ok := cfg["global"].(map[string]any)
	require.True(t, ok, "%s: no global section", exampleScrapeConfig)
	for _, k := range []string{"scrape_interval", "scrape_timeout", "evaluation_interval"} {
		global[k] = "1s"
	}
	jobs, ok := cfg["scrape_configs"].([]any)
	require.True(t, ok && len(jobs) == 1, "%s: one scrape config", exampleScrapeConfig)
	job, ok := jobs[0].(map[string]any)
	require.True(t, ok)
	require.Equal(t, "switchyard", job["job_name"])
	for _, k := range []string{"scrape_interval", "scrape_timeout"} {
		if _, ok := job[k]; ok {
			job[k] = "1s"
		}
	}
	statics, ok := job["static_configs"].([]any)
	require.True(t, ok && len(statics) == 1, "%s: one static config", exampleScrapeConfig)
	static, ok := statics[0].(map[string]any)
	require.True(t, ok)
	static["targets"] = []any{target}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return out
}

// startPrometheus runs prometheus on the shipped scrape configuration,
// scraping target every second, with its storage in a temporary directory.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), scrapeConfig(t, target), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	p := &prometheus{url: "http://" + addr, log: &syncBuffer{}}
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=info")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "prometheus never became ready:\n%s", p.log)
	return p
}

// waitScraped waits for a successful scrape of the gateway, and checks the
// shipped relabeling: instance is the target's host, without the port.
func (p *prometheus) waitScraped(t *testing.T, target string) {
	t.Helper()
	var up []sample
	require.Eventually(t, func() bool {
		var err error
		up, err = p.vector(`up{job="switchyard"}`, 0)
		return err == nil && len(up) == 1 && up[0].value == 1
	}, 15*time.Second, 100*time.Millisecond, "prometheus never scraped the gateway:\n%s", p.log)
	host, _, err := net.SplitHostPort(target)
	require.NoError(t, err)
	assert.Equal(t, host, up[0].labels["instance"], "deploy/prometheus/prometheus.yml's relabeling")
}

// waitSettled waits for a scrape that holds every request of want (its
// requests, durations, streams, tokens and cost) and returns that scrape's
// time, in Unix milliseconds.
func (p *prometheus) waitSettled(t *testing.T, want *tally) int64 {
	t.Helper()
	checks := []struct {
		expr string
		want float64
	}{
		{"sum(switchyard_requests_total)", float64(want.requests)},
		{"sum(gen_ai_client_operation_duration_seconds_count)", float64(want.reached)},
		{"sum(gen_ai_client_operation_time_to_first_chunk_seconds_count)", float64(want.streams)},
		{"sum(gen_ai_client_operation_time_per_output_chunk_seconds_count)", float64(want.streams)},
		{"sum(gen_ai_client_token_usage_sum)", float64(want.tokens)},
		{"sum(switchyard_cost_USD_total)", float64(want.costPico) / 1e12},
	}
	var at int64
	var seen []string
	require.Eventually(t, func() bool {
		ts, ok := p.scalar(t, `timestamp(up{job="switchyard"})`, 0)
		if !ok {
			return false
		}
		at = int64(math.Round(ts * 1000))
		seen = seen[:0]
		for _, c := range checks {
			v, ok := p.scalar(t, c.expr, at)
			seen = append(seen, fmt.Sprintf("%s = %v (want %v)", c.expr, v, c.want))
			if !ok || math.Abs(v-c.want) > 1e-9 {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "Prometheus never scraped all the requests:\n%s\n%s", strings.Join(seen, "\n"), p.log)
	return at
}

type queryResult struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// hasData reports whether a query returned at least one sample, none of
// them NaN (what a panel shows as no value).
func (r *queryResult) hasData() bool {
	switch r.Data.ResultType {
	case "scalar":
		var s [2]any
		if json.Unmarshal(r.Data.Result, &s) != nil {
			return false
		}
		v, _ := s[1].(string)
		return v != "NaN"
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if json.Unmarshal(r.Data.Result, &vec) != nil || len(vec) == 0 {
			return false
		}
		for _, s := range vec {
			if v, _ := s.Value[1].(string); v == "NaN" {
				return false
			}
		}
		return true
	}
	return false
}

// query evaluates expr through the HTTP API at a time in Unix
// milliseconds, or now for 0.
func (p *prometheus) query(expr string, at int64) (*queryResult, error) {
	form := url.Values{"query": {expr}}
	if at != 0 {
		form.Set("time", fmt.Sprintf("%d.%03d", at/1000, at%1000))
	}
	resp, err := http.PostForm(p.url+"/api/v1/query", form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r queryResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	return &r, nil
}

// sample is one series of an instant vector.
type sample struct {
	labels map[string]string
	value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v %v", s.labels, s.value) }

// vector evaluates expr, which must return an instant vector.
func (p *prometheus) vector(expr string, at int64) ([]sample, error) {
	r, err := p.query(expr, at)
	if err != nil {
		return nil, err
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: %s %s %s", expr, r.Status, r.ErrorType, r.Error)
	}
	var vec []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return nil, err
	}
	out := make([]sample, 0, len(vec))
	for _, s := range vec {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %q", expr, str)
		}
		out = append(out, sample{s.Metric, v})
	}
	return out, nil
}

// scalar is the value of a query returning one series.
func (p *prometheus) scalar(t *testing.T, expr string, at int64) (float64, bool) {
	t.Helper()
	vec, err := p.vector(expr, at)
	if err != nil || len(vec) != 1 {
		return 0, false
	}
	return vec[0].value, true
}

// syncBuffer collects a process's output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
