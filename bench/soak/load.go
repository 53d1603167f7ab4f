package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request kinds.
const (
	kindJSON      = "json"
	kindStream    = "stream"
	kindMalformed = "malformed"
)

// Public model names of the gateway config written by writeConfig.
const (
	modelFallback = "soak"      // primary, then the healthy fallback
	modelSolo     = "soak-solo" // the primary only: no fallback
)

// costHeader is the header a JSON answer's cost is in; costComment the SSE
// comment that carries a stream's (gateway/stream.go).
const costHeader = "X-Switchyard-Cost-Usd"

var costComments = []string{": x-switchyard-cost ", ": switchyard-cost "}

// malformed bodies, each expected to get a 4xx.
type malformedBody struct {
	name string
	body []byte
}

func malformedBodies() []malformedBody {
	const depth = 100000
	deep := make([]byte, 0, 2*depth+64)
	deep = append(deep, `{"model":"soak","messages":[{"role":"user","content":"hi"}],"metadata":`...)
	deep = append(deep, bytes.Repeat([]byte("["), depth)...)
	deep = append(deep, bytes.Repeat([]byte("]"), depth)...)
	deep = append(deep, '}')
	return []malformedBody{
		{"deep-nesting-100000", deep},
		{"invalid-json", []byte(`{"model":"soak","messages":[{"role":"user","content":"hi"}`)},
		{"not-an-object", []byte(`["soak"]`)},
		{"stream-not-bool", []byte(`{"model":"soak","stream":"yes","messages":[{"role":"user","content":"hi"}]}`)},
		{"model-not-string", []byte(`{"model":42,"messages":[{"role":"user","content":"hi"}]}`)},
		{"max-tokens-string", []byte(`{"model":"soak","max_tokens":"ten","messages":[{"role":"user","content":"hi"}]}`)},
		{"messages-not-array", []byte(`{"model":"soak","messages":"hello"}`)},
	}
}

// prose is what prompts are made of: plain words, nothing a detector of
// sensitive data would flag.
var prose = strings.Fields("please summarise the following notes about the quarterly planning meeting " +
	"where the team discussed the roadmap the hiring plan and the budget for the coming season " +
	"with a focus on reliability and on the migration of the billing service")

// result is one response as the client saw it.
type result struct {
	at       time.Duration // since the load started, when the request was sent
	kind     string
	model    string // the public model name; "" for malformed bodies
	variant  string // the malformed body's name
	status   int    // 0: transport error
	err      string
	cost     *big.Rat // client-visible cost, nil when none was shown
	done     bool     // stream: data: [DONE] seen
	errEvent bool     // stream: an error event was seen
	code     string   // error code of a non-2xx JSON answer
	latency  time.Duration
}

// tally aggregates results.
type tally struct {
	mu sync.Mutex

	sent, dropped int64
	byClass       map[string]int64            // "2xx", "4xx", "5xx", "err"
	byKind        map[string]map[string]int64 // kind -> class -> count
	byModel       map[string]map[string]int64 // model -> class -> count
	costSum       *big.Rat
	billed        int64 // responses that showed a cost
	streamsDone   int64
	streamsCut    int64 // 200 streams that ended with an error event
	streamsNoCost int64 // 200 streams that showed no cost comment
	jsonNoCost    int64 // 200 JSON answers without the cost header
	fiveXX        []result
	unexpected4xx []result // non-malformed requests answered 4xx
	malformedBad  []result // malformed bodies not answered 4xx
	transport     []result
	latencies     map[string][]time.Duration // kind -> latencies of 2xx
	variants      map[string]map[int]int64   // malformed body -> status -> count
}

func newTally() *tally {
	return &tally{byClass: map[string]int64{}, byKind: map[string]map[string]int64{}, byModel: map[string]map[string]int64{},
		costSum: new(big.Rat), latencies: map[string][]time.Duration{}, variants: map[string]map[int]int64{}}
}

func class(status int) string {
	switch {
	case status == 0:
		return "err"
	case status < 300:
		return "2xx"
	case status < 400:
		return "3xx"
	case status < 500:
		return "4xx"
	default:
		return "5xx"
	}
}

func (t *tally) add(r result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := class(r.status)
	t.byClass[c]++
	inc := func(m map[string]map[string]int64, k string) {
		if m[k] == nil {
			m[k] = map[string]int64{}
		}
		m[k][c]++
	}
	inc(t.byKind, r.kind)
	if r.model != "" {
		inc(t.byModel, r.model)
	}
	if r.cost != nil {
		t.costSum.Add(t.costSum, r.cost)
		t.billed++
	}
	if c == "2xx" {
		t.latencies[r.kind] = append(t.latencies[r.kind], r.latency)
	}
	switch {
	case r.kind == kindMalformed:
		if t.variants[r.variant] == nil {
			t.variants[r.variant] = map[int]int64{}
		}
		t.variants[r.variant][r.status]++
		if c != "4xx" {
			t.malformedBad = append(t.malformedBad, r)
		}
	case c == "5xx":
		t.fiveXX = append(t.fiveXX, r)
	case c == "4xx":
		t.unexpected4xx = append(t.unexpected4xx, r)
	case c == "err":
		t.transport = append(t.transport, r)
	case c == "2xx" && r.kind == kindStream:
		if r.done {
			t.streamsDone++
		}
		if r.errEvent {
			t.streamsCut++
		}
		if r.cost == nil {
			t.streamsNoCost++
		}
	case c == "2xx" && r.kind == kindJSON:
		if r.cost == nil {
			t.jsonNoCost++
		}
	}
}

// loader sends the traffic.
type loader struct {
	url, key    string
	client      *http.Client
	soloShare   float64
	malformed   []malformedBody
	tally       *tally
	start       time.Time
	inflight    atomic.Int64
	maxInflight int64
	seq         atomic.Int64
}

func newLoader(gatewayURL, key string, soloShare float64, maxInflight int64) *loader {
	tr := &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true, ResponseHeaderTimeout: 60 * time.Second,
	}
	return &loader{
		url: gatewayURL + "/v1/chat/completions", key: key,
		client:    &http.Client{Transport: tr, Timeout: 120 * time.Second},
		soloShare: soloShare, malformed: malformedBodies(), tally: newTally(), maxInflight: maxInflight,
	}
}

// run sends open-loop traffic at rate requests per second until ctx ends:
// each request is sent at its scheduled time whatever the earlier ones
// do, up to maxInflight outstanding (beyond which it is counted dropped).
// It returns once every request sent has finished.
func (l *loader) run(ctx context.Context, rate float64) {
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	l.start = time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		next := l.start.Add(time.Duration(i) * interval)
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-timer.C:
		}
		if l.inflight.Load() >= l.maxInflight {
			l.tally.mu.Lock()
			l.tally.dropped++
			l.tally.mu.Unlock()
			continue
		}
		l.inflight.Add(1)
		l.tally.mu.Lock()
		l.tally.sent++
		l.tally.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.inflight.Add(-1)
			l.tally.add(l.one())
		}()
	}
}

// one sends one request of a random kind: 70% JSON chat, 25% streaming
// chat, 5% malformed.
func (l *loader) one() result {
	n := l.seq.Add(1)
	p := rand.Float64()
	var r result
	var body []byte
	switch {
	case p < 0.05:
		m := l.malformed[int(n)%len(l.malformed)]
		r = result{kind: kindMalformed, variant: m.name}
		body = m.body
	default:
		r = result{kind: kindJSON, model: modelFallback}
		if p < 0.30 {
			r.kind = kindStream
		}
		if rand.Float64() < l.soloShare {
			r.model = modelSolo
		}
		body = l.chatBody(r.model, r.kind == kindStream)
	}
	return l.do(r, body)
}

// do sends one request and reads its answer to the end.
func (l *loader) do(r result, body []byte) result {
	r.at = time.Since(l.start)
	t0 := time.Now()
	req, err := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		r.err = err.Error()
		return r
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		r.err = err.Error()
		r.latency = time.Since(t0)
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error struct {
				Code any `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != nil {
			r.code = fmt.Sprint(e.Error.Code)
		}
		r.latency = time.Since(t0)
		return r
	}
	if r.kind != kindStream || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			r.status, r.err = 0, "reading the body: "+err.Error()
		}
		if v := resp.Header.Get(costHeader); v != "" {
			r.cost = parseCost(v, &r)
		}
		r.latency = time.Since(t0)
		return r
	}
	err = readSSE(resp.Body, func(line string) bool {
		switch {
		case line == "data: [DONE]":
			r.done = true
		case strings.HasPrefix(line, `data: {"error"`):
			r.errEvent = true
		case strings.HasPrefix(line, ": "):
			for _, pfx := range costComments {
				if rest, ok := strings.CutPrefix(line, pfx); ok {
					var c struct {
						CostUSD string `json:"cost_usd"`
					}
					if err := json.Unmarshal([]byte(rest), &c); err != nil || c.CostUSD == "" {
						r.err = fmt.Sprintf("unreadable cost comment %q", line)
					} else {
						r.cost = parseCost(c.CostUSD, &r)
					}
				}
			}
		}
		return true
	})
	if err != nil && !errors.Is(err, io.EOF) {
		// The stream broke between gateway and client. What it showed of
		// its cost (nothing, unless the comment came) is all the client
		// knows: that is what the ledger is compared with.
		r.status, r.err = 0, "reading the stream: "+err.Error()
	}
	r.latency = time.Since(t0)
	return r
}

func parseCost(s string, r *result) *big.Rat {
	v, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "eE/") {
		r.err = fmt.Sprintf("unparseable cost %q", s)
		return nil
	}
	return v
}

func (l *loader) chatBody(model string, stream bool) []byte {
	k := 4 + rand.IntN(60)
	off := rand.IntN(len(prose))
	ws := make([]string, k)
	for i := range ws {
		ws[i] = prose[(off+i)%len(prose)]
	}
	m := map[string]any{
		"model":      model,
		"messages":   []map[string]string{{"role": "system", "content": "You are terse."}, {"role": "user", "content": strings.Join(ws, " ")}},
		"max_tokens": 1 + rand.IntN(300),
	}
	if stream {
		m["stream"] = true
		if rand.IntN(2) == 0 {
			m["stream_options"] = map[string]bool{"include_usage": true}
		}
	}
	b, _ := json.Marshal(m)
	return b
}
