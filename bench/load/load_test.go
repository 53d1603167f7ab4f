package main

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestProbeBodyFindsMarkerAcrossReads(t *testing.T) {
	for _, tc := range []struct {
		marker, body string
		want         bool
	}{
		{"[DONE]", "data: {}\n\ndata: [DONE]\n\n", true},
		{"[DONE]", "data: {}\n\n", false},
		{"[DONE]", "[DON", false},
		{`"choices"`, `{"id":"x","choices":[]}`, true},
		{`"choices"`, `{"error":{}}`, false},
	} {
		rec := newRecorder(1, []byte(tc.marker))
		rec.began = time.Now()
		// OneByteReader splits the marker over as many reads as possible.
		b := &probeBody{ReadCloser: io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.body))), rec: rec}
		if _, err := io.Copy(io.Discard, b); err != nil {
			t.Fatal(err)
		}
		if got := rec.complete(0); got != tc.want {
			t.Errorf("body %q marker %q: complete = %v, want %v", tc.body, tc.marker, got, tc.want)
		}
		if _, ok := rec.firstByte(0); !ok {
			t.Errorf("body %q: no first-byte time recorded", tc.body)
		}
	}

	// Whole-buffer reads too.
	rec := newRecorder(1, []byte("[DONE]"))
	rec.began = time.Now()
	b := &probeBody{ReadCloser: io.NopCloser(strings.NewReader("data: [DONE]\n\n")), rec: rec}
	if _, err := io.Copy(io.Discard, b); err != nil || !rec.complete(0) {
		t.Fatalf("single read: complete %v, err %v", rec.complete(0), err)
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(ds)
	want := latencies{100, 50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond}
	if got != want {
		t.Fatalf("percentiles = %+v, want %+v", got, want)
	}
	if (percentiles(nil) != latencies{}) {
		t.Fatal("percentiles(nil) not zero")
	}
}

func TestLeadPacerStopsAfterScheduledHits(t *testing.T) {
	p := leadPacer{ConstantPacer: vegeta.ConstantPacer{Freq: 1000, Per: time.Second}, lead: time.Millisecond, hits: 10}
	if wait, stop := p.Pace(0, 0); stop || wait != 0 {
		t.Fatalf("first hit: wait %v stop %v, want 0 false (due at 1ms, lead 1ms)", wait, stop)
	}
	if wait, stop := p.Pace(0, 4); stop || wait != 4*time.Millisecond {
		t.Fatalf("fifth hit: wait %v stop %v, want 4ms false", wait, stop)
	}
	if _, stop := p.Pace(time.Hour, 10); !stop {
		t.Fatal("pacer did not stop after its hits")
	}
}

func TestEndpointRefusesNonLoopback(t *testing.T) {
	for base, ok := range map[string]bool{
		"http://127.0.0.1:8080/v1":  true,
		"http://localhost:8080/v1/": true,
		"http://[::1]:9000/v1":      true,
		"http://10.1.2.3:8080/v1":   false,
		"http://example.com/v1":     false,
		"ftp://127.0.0.1/v1":        false,
	} {
		ep, err := endpoint(base, "/chat/completions")
		if (err == nil) != ok {
			t.Errorf("endpoint(%q) error = %v, want ok %v", base, err, ok)
		}
		if ok && !strings.HasSuffix(ep, "/v1/chat/completions") {
			t.Errorf("endpoint(%q) = %q", base, ep)
		}
	}
}

func TestAPIRequests(t *testing.T) {
	for _, name := range apiNames() {
		for _, mode := range []string{"json", "stream"} {
			f, err := lookupAPI(name)
			if err != nil {
				t.Fatal(err)
			}
			spec := f.spec(mode, "m", "sk-x")
			var req map[string]any
			if err := json.Unmarshal(spec.body, &req); err != nil {
				t.Fatalf("%s %s: body %s: %v", name, mode, spec.body, err)
			}
			if req["model"] != "m" || req["stream"] != (mode == "stream") {
				t.Errorf("%s %s: body %s: want model m, stream %v", name, mode, spec.body, mode == "stream")
			}
			// One short user message, in the list each format keeps it in.
			list := map[string]string{"chat": "messages", "responses": "input", "messages": "messages"}[name]
			msgs, _ := req[list].([]any)
			if len(msgs) != 1 || msgs[0].(map[string]any)["role"] != "user" || msgs[0].(map[string]any)["content"] != "Say hello" {
				t.Errorf("%s %s: %s = %v, want one user message", name, mode, list, req[list])
			}
			if got := spec.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("%s %s: Content-Type %q", name, mode, got)
			}
			if string(spec.marker) != map[string]string{"json": f.jsonMarker, "stream": f.streamMarker}[mode] || len(spec.marker) > maxMarker {
				t.Errorf("%s %s: marker %q", name, mode, spec.marker)
			}
			switch name {
			case "chat":
				if mode == "stream" && req["stream_options"] == nil {
					t.Errorf("chat stream: no stream_options.include_usage in %s", spec.body)
				}
			case "responses":
				if req["store"] != false {
					t.Errorf("responses %s: store = %v, want false (nothing stored)", mode, req["store"])
				}
			case "messages":
				if req["max_tokens"] != float64(benchMaxTokens) {
					t.Errorf("messages %s: max_tokens = %v, want %d", mode, req["max_tokens"], benchMaxTokens)
				}
			}
			wantAuth := map[string][2]string{
				"chat":      {"Bearer sk-x", ""},
				"responses": {"Bearer sk-x", ""},
				"messages":  {"", "sk-x"},
			}[name]
			if a, x := spec.header.Get("Authorization"), spec.header.Get("x-api-key"); a != wantAuth[0] || x != wantAuth[1] {
				t.Errorf("%s %s: Authorization %q, x-api-key %q, want %q", name, mode, a, x, wantAuth)
			}
			if name == "messages" && spec.header.Get("anthropic-version") == "" {
				t.Error("messages: no anthropic-version header")
			}
			if spec := f.spec(mode, "m", ""); spec.header.Get("Authorization")+spec.header.Get("x-api-key") != "" {
				t.Errorf("%s %s: a key header without -key", name, mode)
			}
		}
	}
	if _, err := lookupAPI("completions"); err == nil {
		t.Error("lookupAPI accepted an unknown format")
	}
	if got := apiNames(); !slices.Equal(got, []string{"chat", "messages", "responses"}) {
		t.Errorf("apiNames = %v", got)
	}
}

// Answers in each format, shortened from what the gateway and the mock send.
var sampleAnswers = map[string]map[string]string{
	"chat": {
		"json": `{"id":"chatcmpl-mock","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}}`,
		"stream": "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello!\"},\"finish_reason\":\"stop\"}]}\n\n" +
			"data: [DONE]\n\n",
	},
	"responses": {
		"json": `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello!","annotations":[]}]}],"store":false,"usage":{"input_tokens":12,"output_tokens":40,"total_tokens":52}}`,
		"stream": "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"status\":\"in_progress\",\"output\":[]}}\n\n" +
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"delta\":\"Hello!\"}\n\n" +
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"status\":\"completed\"}}\n\n" +
			": x-switchyard-cost {\"cost_usd\":\"0\"}\n\n",
	},
	"messages": {
		"json": `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":40}}`,
		"stream": "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"type\":\"message\",\"content\":[]}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello!\"}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	},
}

// Each format's marker completes its own answers, whole and split over
// one-byte reads, and none of another format's, nor an answer cut before
// its last event. A JSON marker may also be found in the same format's
// stream (chat's "choices" always was; Responses' terminal event carries
// the whole response): the harness knows which of the two it asked for.
func TestAPIMarkersTellFormatsApart(t *testing.T) {
	check := func(marker, body string, oneByte bool) bool {
		rec := newRecorder(1, []byte(marker))
		rec.began = time.Now()
		var r io.Reader = strings.NewReader(body)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		b := &probeBody{ReadCloser: io.NopCloser(r), rec: rec}
		if _, err := io.Copy(io.Discard, b); err != nil {
			t.Fatal(err)
		}
		if _, ok := rec.firstByte(0); !ok {
			t.Errorf("marker %q: no first-byte time", marker)
		}
		return rec.complete(0)
	}
	for _, name := range apiNames() {
		for _, mode := range []string{"json", "stream"} {
			marker := string(apiFormats[name].spec(mode, "m", "").marker)
			for _, answer := range apiNames() {
				for _, amode := range []string{"json", "stream"} {
					body := sampleAnswers[answer][amode]
					want := answer == name && amode == mode
					if answer == name && mode == "json" && amode == "stream" {
						continue
					}
					for _, oneByte := range []bool{false, true} {
						if got := check(marker, body, oneByte); got != want {
							t.Errorf("%s %s marker %q on a %s %s answer (one-byte reads %v): complete %v, want %v",
								name, mode, marker, answer, amode, oneByte, got, want)
						}
					}
				}
			}
			// A stream cut before its terminal event is incomplete.
			if mode == "stream" {
				body := sampleAnswers[name][mode]
				cut := body[:strings.LastIndex(body, marker)]
				if check(marker, cut, false) {
					t.Errorf("%s stream: complete without its terminal event", name)
				}
			}
		}
	}
}

func TestReportNamesTheAPI(t *testing.T) {
	rep := report{api: "messages", targets: []targetInfo{
		{name: "gateway", url: "http://127.0.0.1:1/v1", api: "messages", format: apiFormats["messages"]},
	}}
	md := rep.markdown()
	if first, _, _ := strings.Cut(md, "\n"); !strings.Contains(first, "gateway API messages") {
		t.Errorf("heading %q does not name the API", first)
	}
	if !strings.Contains(md, "POST …/messages") {
		t.Errorf("report does not name the endpoint:\n%s", md)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want targetSpec
	}{
		{"nginx=http://127.0.0.1:18082/v1", targetSpec{name: "nginx", url: "http://127.0.0.1:18082/v1"}},
		{"nginx=http://127.0.0.1:18082/v1,pid=42,api=chat", targetSpec{name: "nginx", url: "http://127.0.0.1:18082/v1", pid: 42, api: "chat"}},
		{"sy-on.2=http://[::1]:1/v1, api=messages ,pid=7", targetSpec{name: "sy-on.2", url: "http://[::1]:1/v1", pid: 7, api: "messages"}},
	} {
		got, err := parseTarget(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "nginx", "nginx=", "=http://127.0.0.1:1/v1", "direct=http://127.0.0.1:1/v1",
		"a b=http://127.0.0.1:1/v1", "-x=http://127.0.0.1:1/v1",
		"nginx=http://127.0.0.1:1/v1,pid=0", "nginx=http://127.0.0.1:1/v1,pid=x",
		"nginx=http://127.0.0.1:1/v1,api=completions", "nginx=http://127.0.0.1:1/v1,port=1",
		"nginx=http://127.0.0.1:1/v1,pid=1,pid=2", "nginx=http://127.0.0.1:1/v1,pid",
	} {
		if got, err := parseTarget(bad); err == nil {
			t.Errorf("parseTarget(%q) = %+v, want an error", bad, got)
		}
	}

	var f targetFlag
	for _, v := range []string{"nginx=http://127.0.0.1:2/v1,api=chat", "on=http://127.0.0.1:3/v1,pid=9"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if len(f) != 2 || f[0].name != "nginx" || f[1].pid != 9 || f.String() != "nginx=http://127.0.0.1:2/v1 on=http://127.0.0.1:3/v1" {
		t.Errorf("targetFlag = %+v (%s)", f, f.String())
	}
	var d describeFlag
	if err := d.Set("off=policy always runs = not optional"); err != nil || d["off"] != "policy always runs = not optional" {
		t.Errorf("describeFlag.Set: %v, %v", d, err)
	}
	for _, bad := range []string{"off", "off=", "=x", "o f=x"} {
		if err := d.Set(bad); err == nil {
			t.Errorf("describeFlag.Set(%q) accepted", bad)
		}
	}
}

func TestResolveTargets(t *testing.T) {
	nginx := targetSpec{name: "nginx", url: "http://127.0.0.1:2/v1", api: "chat"}
	on := targetSpec{name: "on", url: "http://127.0.0.1:3/v1", pid: 5}

	// -gateway and -pid are the target "gateway", first, sent -api.
	got, err := resolveTargets(options{gatewayURL: "http://127.0.0.1:1/v1", pid: 4, api: "messages", targets: targetFlag{nginx, on}})
	want := []targetSpec{
		{name: "gateway", url: "http://127.0.0.1:1/v1", pid: 4, api: "messages"},
		nginx,
		{name: "on", url: "http://127.0.0.1:3/v1", pid: 5, api: "messages"},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("resolveTargets = %+v, %v; want %+v", got, err, want)
	}
	// The old invocation alone.
	got, err = resolveTargets(options{gatewayURL: "http://127.0.0.1:1/v1", api: "chat"})
	if err != nil || len(got) != 1 || got[0].name != "gateway" || got[0].api != "chat" {
		t.Errorf("resolveTargets(-gateway) = %+v, %v", got, err)
	}
	got, err = resolveTargets(options{api: "chat", targets: targetFlag{nginx, on}, baseline: "nginx", describe: describeFlag{"on": "x"}})
	if err != nil || len(got) != 2 || got[1].api != "chat" {
		t.Errorf("resolveTargets(-target -baseline -describe) = %+v, %v", got, err)
	}

	for name, o := range map[string]options{
		"nothing":          {api: "chat"},
		"-pid alone":       {api: "chat", pid: 3, targets: targetFlag{on}},
		"duplicate":        {api: "chat", targets: targetFlag{on, on}},
		"gateway twice":    {api: "chat", gatewayURL: "http://127.0.0.1:1/v1", targets: targetFlag{{name: "gateway", url: "http://127.0.0.1:9/v1"}}},
		"unknown baseline": {api: "chat", targets: targetFlag{on}, baseline: "nginx"},
		"unknown describe": {api: "chat", targets: targetFlag{on}, describe: describeFlag{"off": "x"}},
	} {
		if got, err := resolveTargets(o); err == nil {
			t.Errorf("%s: resolveTargets = %+v, want an error", name, got)
		}
	}
}

// runCeiling drives a search against a target that sustains every rate up
// to ceiling and nothing above, and returns the rates it tried.
func runCeiling(fixedRates []int, ceiling, maxRate int) (steps []int, best int) {
	var fixed []rateOutcome
	for _, r := range fixedRates {
		fixed = append(fixed, rateOutcome{r, r <= ceiling})
	}
	s := newCeilingSearch(fixed, maxRate)
	for rate := s.next(); rate > 0; rate = s.next() {
		steps = append(steps, rate)
		if len(steps) > 50 {
			panic("ceiling search does not end")
		}
		s.record(rate, rate <= ceiling)
	}
	if s.next() != 0 {
		panic("next after done")
	}
	return steps, s.best()
}

func TestCeilingSearchSteps(t *testing.T) {
	std := []int{1000, 2000, 5000}
	for _, tc := range []struct {
		name     string
		fixed    []int
		ceiling  int
		max      int
		steps    []int
		wantBest int
	}{
		// Up by 25% from the highest sustained fixed rate; 5000 already
		// failed, so once 4000 fails: one bisection between 3250 and 4000.
		{"between fixed rates", std, 3600, 20000, []int{2500, 3250, 4000, 3750}, 3250},
		{"bisection sustained", std, 3800, 20000, []int{2500, 3250, 4000, 3750}, 3750},
		// The next step up would reach the failed fixed rate: bisect at once.
		{"bisect against a fixed failure", []int{1000, 2000, 2250}, 2100, 20000, nil, 2000},
		{"bisect against a fixed failure 2", []int{1000, 2000, 2500}, 2300, 20000, []int{2250}, 2250},
		// Everything sustained: up to the cap, never past it.
		{"to the cap", std, 1 << 30, 20000, []int{6250, 7750, 9750, 12250, 15250, 19000, 20000}, 20000},
		{"cap below the next step", std, 1 << 30, 6000, []int{6000}, 6000},
		{"fixed rate at the cap", std, 1 << 30, 5000, nil, 5000},
		{"first step fails", []int{500, 1000}, 1100, 20000, []int{1250}, 1000},
		{"one step then bisect", std, 7000, 20000, []int{6250, 7750, 7000}, 7000},
		// Nothing sustained: down by 20% until sustained, then the bisection.
		{"downward", std, 600, 20000, []int{750, 500}, 500},
		{"downward with bisection", []int{5000}, 3300, 20000, []int{4000, 3250, 3750}, 3250},
		{"downward to the floor", []int{500}, 100, 20000, []int{250}, 0},
		{"floor already", []int{250}, 100, 20000, nil, 0},
		{"no fixed results", nil, 1000, 20000, nil, 0},
	} {
		steps, best := runCeiling(tc.fixed, tc.ceiling, tc.max)
		if !slices.Equal(steps, tc.steps) || best != tc.wantBest {
			t.Errorf("%s: steps %v, best %d; want %v, %d", tc.name, steps, best, tc.steps, tc.wantBest)
		}
	}

	// Every step is a multiple of the grain, new, and within the cap.
	for _, fixed := range [][]int{{500, 1000}, {1000, 2000, 5000}, {300}, {20000}} {
		for ceiling := 0; ceiling <= 21000; ceiling += 125 {
			steps, best := runCeiling(fixed, ceiling, 20000)
			seen := map[int]bool{}
			for _, r := range fixed {
				seen[r] = true
			}
			for _, r := range steps {
				if r%ceilingGrain != 0 || r > 20000 || r < ceilingGrain || seen[r] {
					t.Fatalf("fixed %v ceiling %d: bad step %d in %v", fixed, ceiling, r, steps)
				}
				seen[r] = true
			}
			if len(fixed) == 3 && len(steps) > 8 { // the default -rates
				t.Errorf("fixed %v ceiling %d: %d steps %v", fixed, ceiling, len(steps), steps)
			}
			if best > ceiling {
				t.Fatalf("fixed %v ceiling %d: best %d", fixed, ceiling, best)
			}
		}
	}
}

func TestSustained(t *testing.T) {
	s := fakeStep("json", "x", 1000, time.Millisecond, 150*time.Millisecond, 0, true, false)
	if !s.sustained() {
		t.Error("ok step not sustained")
	}
	s.lat.p99 = 201 * time.Millisecond
	if s.sustained() {
		t.Error("p99 over 200ms sustained")
	}
	s = fakeStep("json", "x", 1000, time.Millisecond, time.Millisecond, 0, true, false)
	s.ok = s.scheduled - 2 // 99.8%
	if s.sustained() {
		t.Error("99.8% success sustained")
	}
	s.ok = s.scheduled - 1 // 99.9%
	if !s.sustained() {
		t.Error("99.9% success not sustained")
	}
}

// fakeStep is a measured step with the given p50/p99 and TTFB p50, all of
// whose 1000 requests succeeded (or 90% when !ok).
func fakeStep(mode, target string, rate int, p50, p99, ttfb time.Duration, ok, ceiling bool) *stepResult {
	s := &stepResult{
		mode: mode, target: target, rate: rate, duration: time.Second,
		scheduled: 1000, completed: 1000, ok: 1000,
		lat:       latencies{1000, p50, p50, p99},
		ttfb:      latencies{1000, ttfb, ttfb, ttfb},
		vegeta:    latencies{1000, p50, p50, p99},
		errors:    map[string]int{},
		targetCPU: -1, targetRSS: -1, ceiling: ceiling,
	}
	if !ok {
		s.ok = 900
		s.errors["HTTP 503"] = 100
	}
	return s
}

func TestSummaryTable(t *testing.T) {
	const ms = time.Millisecond
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	mem := func(idle, peak int64) (*procStatus, *procStatus) {
		return &procStatus{rssKB: idle, hwmKB: idle}, &procStatus{rssKB: peak, hwmKB: peak}
	}
	rep := report{api: "chat", baseline: "nginx", rates: []int{1000, 2000}, ceiling: true, ceilingMax: 20000,
		direct: targetInfo{name: "direct", url: "http://127.0.0.1:1/v1", format: apiFormats["chat"]}}
	for _, spec := range []struct {
		name       string
		idle, peak int64
	}{{"on", 40960, 102400}, {"nginx", 2048, 4096}, {"off", 20480, 61440}, {"dead", 0, 0}} {
		ti := targetInfo{name: spec.name, url: "http://127.0.0.1:2/v1", api: "chat", format: apiFormats["chat"]}
		if spec.idle > 0 {
			ti.idle, ti.end = mem(spec.idle, spec.peak)
		}
		rep.targets = append(rep.targets, ti)
	}
	add := func(s *stepResult) { rep.steps = append(rep.steps, s) }
	for _, mode := range []string{"json", "stream"} {
		for _, rate := range []int{1000, 2000} {
			add(fakeStep(mode, "direct", rate, us(500), us(900), us(300), true, false))
			add(fakeStep(mode, "on", rate, us(1580), us(3100), us(1300), true, false))
			add(fakeStep(mode, "nginx", rate, us(600), us(1100), us(350), true, false))
			add(fakeStep(mode, "off", rate, us(1040), us(2000), us(900), rate == 1000, false))
			add(fakeStep(mode, "dead", rate, us(500), us(900), us(300), false, false))
		}
	}
	// json ceilings: nginx 7,000 (a higher rate failed), on ≥ 20,000,
	// off 1,000 (2,000 failed), direct ≥ 2,000 (no search).
	add(fakeStep("json", "nginx", 6250, ms, ms, ms, true, true))
	add(fakeStep("json", "nginx", 7750, ms, ms, ms, false, true))
	add(fakeStep("json", "nginx", 7000, ms, ms, ms, true, true))
	add(fakeStep("json", "on", 20000, ms, ms, ms, true, true))
	add(fakeStep("json", "off", 1250, ms, 300*ms, ms, true, true)) // p99 too high: failed

	md := rep.markdown()
	row := func(prefix string) string {
		for line := range strings.Lines(md) {
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(line)
			}
		}
		t.Fatalf("no row %q in\n%s", prefix, md)
		return ""
	}
	for prefix, want := range map[string]string{
		"| target ": "| target | added p50 @1,000 r/s | added p99 @1,000 r/s | stream TTFB added p50 @1,000 r/s | sustained JSON | sustained stream | RSS idle / peak |",
		// The baseline comes first, without ratios.
		"| **nginx**": "| **nginx** (baseline) | +0.100ms | +0.200ms | +0.050ms | 7,000 r/s | ≥ 2,000 r/s | 2.0 / 4.0 MiB |",
		"| **on**":    "| **on** | +1.080ms (10.8×) | +2.200ms (11.0×) | +1.000ms (20.0×) | ≥ 20,000 r/s (2.86×) | ≥ 2,000 r/s (1.00×) | 40.0 / 100.0 MiB (20.0× / 25.0×) |",
		"| **off**":   "| **off** | +0.540ms (5.4×) | +1.100ms (5.5×) | +0.600ms (12.0×) | 1,000 r/s (0.14×) | 1,000 r/s (0.50×) | 20.0 / 60.0 MiB (10.0× / 15.0×) |",
		"| **dead**":  "| **dead** | +0.000ms (not sustained) | +0.000ms (not sustained) | +0.000ms (not sustained) | < 1,000 r/s | < 1,000 r/s | – |",
		"| *direct*":  "| *direct* (harness + mock, the floor) | | | | ≥ 2,000 r/s | ≥ 2,000 r/s | – |",
	} {
		if got := row(prefix); got != want {
			t.Errorf("summary row:\n got %s\nwant %s", got, want)
		}
	}
	// Summary rows: baseline first, then run order, then direct.
	var order []string
	for line := range strings.Lines(md[strings.Index(md, "### Summary"):strings.Index(md, "### Mode: json")]) {
		if strings.HasPrefix(line, "| **") || strings.HasPrefix(line, "| *direct*") {
			order = append(order, strings.Fields(line)[1])
		}
	}
	if want := []string{"**nginx**", "**on**", "**off**", "**dead**", "*direct*"}; !slices.Equal(order, want) {
		t.Errorf("summary order %v, want %v", order, want)
	}
	for _, want := range []string{
		"| 1000 | **added** on | | | +1.080ms |",
		"| 2000 | **added** nginx |",
		"#### Ceiling search, json",
		"- nginx (from 2,000 r/s): 6,250 ✓ → 7,750 ✗ → 7,000 ✓ ⇒ 7,000 r/s",
		"- off (from 1,000 r/s): 1,250 ✗ ⇒ 1,000 r/s",
		"2000 req/s dead failures: 100× HTTP 503.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md[strings.Index(md, "### Mode: stream"):], "Ceiling search") {
		t.Error("a ceiling section for stream, which had no ceiling steps")
	}

	// Without 1,000 among the rates the columns come from the lowest rate.
	rep.rates = []int{2000, 1500}
	for i, s := range rep.steps {
		if s.rate == 1000 {
			c := *s
			c.rate = 1500
			rep.steps[i] = &c
		}
	}
	md = rep.markdown()
	if !strings.Contains(md, "| added p50 @1,500 r/s |") || !strings.Contains(md, "Added latencies at 1,500 r/s (the lowest fixed rate: 1,000 r/s was not run)") {
		t.Errorf("summary not taken at 1,500 r/s:\n%s", md[:strings.Index(md, "### Mode")])
	}
}

func TestRatioFormatting(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {12500, "12,500"}, {1234567, "1,234,567"}, {-2500, "-2,500"}} {
		if got := fmtThousands(tc.n); got != tc.want {
			t.Errorf("fmtThousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := fmtRate(3500) + fmtRatio(3500, 8333, 2); got != "3,500 r/s (0.42×)" {
		t.Errorf("rate with ratio = %q", got)
	}
	if got := addedCell(delta{d: 590 * time.Microsecond, ok: true}, &delta{d: 109 * time.Microsecond, ok: true}); got != "+0.590ms (5.4×)" {
		t.Errorf("addedCell = %q", got)
	}
	// A ratio to a zero or negative difference, or of one, means nothing.
	for _, tc := range [][2]time.Duration{{time.Millisecond, 0}, {time.Millisecond, -time.Microsecond}, {-time.Microsecond, time.Millisecond}} {
		got := addedCell(delta{d: tc[0], ok: true}, &delta{d: tc[1], ok: true})
		if strings.Contains(got, "×") {
			t.Errorf("addedCell(%v, base %v) = %q: a meaningless ratio", tc[0], tc[1], got)
		}
	}
	if got := addedCell(delta{}, &delta{d: time.Millisecond, ok: true}); got != "–" {
		t.Errorf("unknown added = %q", got)
	}
	if got := addedCell(delta{d: time.Millisecond, ok: true}, &delta{}); got != "+1.000ms" {
		t.Errorf("added against an unknown baseline = %q", got)
	}
	for _, tc := range []struct {
		r    sustainedRate
		base *sustainedRate
		want string
	}{
		{sustainedRate{}, nil, "–"},
		{sustainedRate{tested: true, lowest: 500}, nil, "< 500 r/s"},
		{sustainedRate{tested: true, rate: 20000, atLeast: true}, &sustainedRate{tested: true, rate: 8000}, "≥ 20,000 r/s (2.50×)"},
		{sustainedRate{tested: true, rate: 3500}, &sustainedRate{tested: true, lowest: 500}, "3,500 r/s"},
	} {
		if got := tc.r.fmt(tc.base); got != tc.want {
			t.Errorf("%+v.fmt = %q, want %q", tc.r, got, tc.want)
		}
	}
}
