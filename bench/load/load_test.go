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
	rep := report{api: "messages", gatewayAPI: apiFormats["messages"], gatewayURL: "http://127.0.0.1:1/v1"}
	md := rep.markdown()
	if first, _, _ := strings.Cut(md, "\n"); !strings.Contains(first, "gateway API messages") {
		t.Errorf("heading %q does not name the API", first)
	}
	if !strings.Contains(md, "POST …/messages") {
		t.Errorf("report does not name the endpoint:\n%s", md)
	}
}
