package dashboards_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

// Every panel query of every dashboard, evaluated by a real Prometheus
// scraping a real gateway after synthetic traffic, returns data; and the
// spend Prometheus sees is what the responses and the cost ledger report.
func TestDashboardsAgainstPrometheus(t *testing.T) {
	bin := prometheusBinary(t)
	gw := startGateway(t)
	prom := startPrometheus(t, bin, gw.host)
	prom.waitScraped(t)

	// Two waves, a scrape apart, so increase() and rate() see counters
	// grow rather than appear.
	var tr traffic
	tr.wave(t, gw, 1)
	time.Sleep(1500 * time.Millisecond)
	tr.wave(t, gw, 2)
	t.Logf("traffic: %d requests, %d answered, %d over quota, cost %s USD", tr.requests, tr.answered, tr.rejected, picoString(tr.costPico))
	require.Equal(t, 4, tr.rejected, "team qa: 2 of its 6 requests pass")

	// The last request's metrics are in once Prometheus sees the whole
	// spend; two more scrapes give every series a few samples.
	want := float64(tr.costPico) / 1e12
	var got float64
	require.Eventually(t, func() bool {
		v, ok := prom.scalar(t, "sum(switchyard_cost_USD_total)")
		got = v
		return ok && math.Abs(v-want) < 1e-9
	}, 20*time.Second, 200*time.Millisecond, "Prometheus's sum(switchyard_cost_USD_total) %v never reached the responses' %v\n%s", got, want, prom.log)
	time.Sleep(2500 * time.Millisecond)

	t.Run("cost", func(t *testing.T) {
		v, ok := prom.scalar(t, "sum(switchyard_cost_USD_total)")
		require.True(t, ok)
		assert.InDelta(t, want, v, 1e-9, "Prometheus's spend is the sum of the responses' X-Switchyard-Cost-Usd")
		assert.Equal(t, picoString(tr.costPico), picoString(gw.ledgerTotal(t, tr.start, tr.answered)),
			"the cost ledger's total is the sum of the responses' costs")
	})

	for _, name := range dashboardFiles {
		d := loadDashboard(t, name)
		vars := map[string]string{
			"__rate_interval": "1m", "__range": "5m", "__interval": "15s", "__range_s": "300", "__interval_ms": "15000",
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && v.IncludeAll {
				vars[v.Name] = v.AllValue
			}
		}
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				t.Run(fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(name, ".json"), p.Title, tg.RefID), func(t *testing.T) {
					expr := substitute(t, tg.Expr, vars)
					res, err := prom.query(expr)
					require.NoError(t, err, "%s\n%s", expr, prom.log)
					require.Equal(t, "success", res.Status, "%s: %s %s", expr, res.ErrorType, res.Error)
					require.True(t, res.hasData(), "no data for %s: %s", expr, res.Data.Result)
					t.Logf("%s", res.Data.Result)
				})
			}
		}
	}
	if t.Failed() {
		t.Logf("prometheus log:\n%s", prom.log)
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
// key and a quota, all on loopback.
func startGateway(t *testing.T) *gatewayUnderTest {
	t.Helper()
	self := newUpstream(t, 2*time.Millisecond, 20*time.Millisecond, false)
	prop := newUpstream(t, 10*time.Millisecond, 40*time.Millisecond, false)
	flaky := newUpstream(t, 0, time.Millisecond, true)
	dead := deadURL(t)

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
models:
  - {name: llama3.2, deployments: [{backend: vllm}]}
  - {name: qwen, deployments: [{backend: vllm}]}
  - {name: gpt-4o-mini, deployments: [{backend: openai}]}
  - {name: resilient, deployments: [{backend: gone, model: qwen2}, {backend: openai, model: gpt-4o}]}
  - {name: broken, deployments: [{backend: flaky, model: qwen-broken}]}
admin:
  keys: [{id: ops, sha256: %s}]
quotas:
  limits:
    - {scope: team, id: qa, requests_per_minute: 2}
keys:
`, self.URL+"/v1", prop.URL+"/v1", dead, flaky.URL+"/v1", gateway.HashKey(adminKey))
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
	start    time.Time
	requests int
	answered int   // requests that reached a backend and were billed
	rejected int   // 429s from the quota
	costPico int64 // the sum of the costs the responses reported
}

// wave sends one round of requests across teams, models and kinds: unary
// and streamed, a fallback, a policy denial, a redaction, a failing
// backend and (second wave) quota rejections.
func (tr *traffic) wave(t *testing.T, g *gatewayUnderTest, n int) {
	t.Helper()
	if tr.start.IsZero() {
		tr.start = time.Now().UTC().Add(-time.Second)
	}
	type req struct {
		team, model string
		stream      bool
		content     string
		status      int
	}
	var reqs []req
	for _, team := range []string{"search", "research", "finance"} {
		for _, model := range []string{"llama3.2", "qwen", "gpt-4o-mini"} {
			reqs = append(reqs, req{team, model, false, "hello", 200})
		}
		reqs = append(reqs, req{team, "qwen", true, "stream please", 200}, req{team, "gpt-4o-mini", true, "stream please", 200})
	}
	reqs = append(reqs,
		req{"interns", "llama3.2", false, "hi", 200},
		req{"interns", "llama3.2", true, "hi", 200},
		req{"interns", "qwen", false, "hi", http.StatusForbidden},                         // MODEL_NOT_ALLOWED
		req{"search", "gpt-4o-mini", false, "mail jane.doe@example.com the summary", 200}, // EMAIL redacted
		req{"research", "resilient", false, "fall back", 200},                             // gone → openai
		req{"research", "broken", false, "fail", 0},                                       // 5xx
		// Team qa may send 2 requests a minute: the first two of wave 1
		// pass, the rest get 429.
		req{"qa", "qwen", false, "one", -1},
		req{"qa", "qwen", true, "two", -1},
		req{"qa", "gpt-4o-mini", false, "three", -1},
	)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	for _, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			status, cost, err := send(g.base, keyOf(r.team), r.model, r.content, r.stream)
			mu.Lock()
			defer mu.Unlock()
			tr.requests++
			if !assert.NoError(t, err, "%+v", r) {
				return
			}
			switch r.status {
			case 0:
				assert.GreaterOrEqual(t, status, 500, "%+v", r)
			case -1:
				assert.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, status, "%+v", r)
				if status == http.StatusTooManyRequests {
					tr.rejected++
				}
			default:
				assert.Equal(t, r.status, status, "%+v", r)
			}
			if status == http.StatusOK {
				tr.answered++
				tr.costPico += cost
			}
		}()
	}
	wg.Wait()
}

// send makes one chat completion and returns its status and the cost the
// gateway reported: X-Switchyard-Cost-Usd, or a stream's cost comment.
func send(base, key, model, content string, stream bool) (int, int64, error) {
	body, _ := json.Marshal(map[string]any{
		"model": model, "stream": stream, "max_tokens": 64,
		"messages": []map[string]string{{"role": "user", "content": content}},
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	if !stream {
		c, err := parsePico(resp.Header.Get(gateway.HeaderCost))
		return resp.StatusCode, c, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), ": x-switchyard-cost "); ok {
			var cc struct {
				CostUSD string `json:"cost_usd"`
			}
			if err := json.Unmarshal([]byte(rest), &cc); err != nil {
				return 0, 0, err
			}
			c, err := parsePico(cc.CostUSD)
			return resp.StatusCode, c, err
		}
	}
	return resp.StatusCode, 0, fmt.Errorf("stream without a cost comment:\n%s", raw)
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

type prometheus struct {
	url string
	log *syncBuffer
}

// startPrometheus runs prometheus scraping target every second, with its
// storage in a temporary directory.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: switchyard
    metrics_path: /metrics
    static_configs: [{targets: [%q]}]
`, target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
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

// waitScraped waits for a successful scrape of the gateway.
func (p *prometheus) waitScraped(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, ok := p.scalar(t, `up{job="switchyard"}`)
		return ok && v == 1
	}, 15*time.Second, 100*time.Millisecond, "prometheus never scraped the gateway:\n%s", p.log)
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

// query evaluates expr at now through the HTTP API.
func (p *prometheus) query(expr string) (*queryResult, error) {
	resp, err := http.PostForm(p.url+"/api/v1/query", url.Values{"query": {expr}})
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

// scalar is the value of a query returning one series.
func (p *prometheus) scalar(t *testing.T, expr string) (float64, bool) {
	t.Helper()
	r, err := p.query(expr)
	if err != nil || r.Status != "success" || r.Data.ResultType != "vector" {
		return 0, false
	}
	var vec []struct {
		Value [2]any `json:"value"`
	}
	if json.Unmarshal(r.Data.Result, &vec) != nil || len(vec) != 1 {
		return 0, false
	}
	s, _ := vec[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
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
