package main

import (
	"math"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// These test the soak's own arithmetic and mock; the soak itself is not
// run by go test.

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3}
	ys := []float64{10, 12, 14, 16}
	if b, ok := slope(xs, ys); !ok || math.Abs(b-2) > 1e-12 {
		t.Fatalf("slope = %v, %v; want 2", b, ok)
	}
	if _, ok := slope([]float64{1, 1}, []float64{1, 2}); ok {
		t.Fatal("slope of one x should not be ok")
	}
}

func TestSummariseSecondHalf(t *testing.T) {
	var s []sample
	for i := 0; i <= 60; i++ {
		rss := int64(100 << 10) // 100 MiB, flat in the second half
		if i < 30 {
			rss = int64(i) << 10
		}
		s = append(s, sample{at: time.Duration(i) * time.Minute, rssKiB: rss})
	}
	m := summarise(s, time.Hour)
	if !m.slopeOK || math.Abs(m.slopeMiBh) > 1e-9 || m.maxRSS != 100 || m.minRSS != 0 {
		t.Fatalf("summarise = %+v", m)
	}
}

func TestParseProm(t *testing.T) {
	got := parseProm(`# HELP switchyard_cost_USD_total Spend in USD.
# TYPE switchyard_cost_USD_total counter
switchyard_cost_USD_total{gen_ai_request_model="soak",switchyard_team="a b"} 1.5
switchyard_cost_USD_total{gen_ai_request_model="soak-solo"} 0.25
go_goroutines 42
`)
	if got["switchyard_cost_USD_total"] != 1.75 || got["go_goroutines"] != 42 {
		t.Fatalf("parseProm = %v", got)
	}
}

func TestScheduleFaults(t *testing.T) {
	count := func(plan []faultPlan) map[string]int {
		c := map[string]int{}
		for _, p := range plan {
			c[p.kind]++
		}
		return c
	}
	c := count(scheduleFaults(30 * time.Minute))
	want := map[string]int{faultRedisKill: 9, faultRedisSleep: 14, faultUpstream: 5, faultStreamCut: 4}
	for k, n := range want {
		if c[k] != n {
			t.Errorf("30m: %s ×%d, want %d", k, c[k], n)
		}
	}
	for _, p := range scheduleFaults(2 * time.Minute) {
		if p.at+p.dur > 2*time.Minute-10*time.Second {
			t.Errorf("2m: %s at %s lasting %s ends too late", p.kind, p.at, p.dur)
		}
	}
	if c := count(scheduleFaults(2 * time.Minute)); len(c) != 4 {
		t.Errorf("2m: not every fault kind is scheduled: %v", c)
	}
}

func TestRatDecimal(t *testing.T) {
	for in, want := range map[string]string{"0.000906": "0.000906", "1.500": "1.5", "0": "0", "-0.000000000001": "-0.000000000001", "12": "12"} {
		r, _ := new(big.Rat).SetString(in)
		if got := ratDecimal(r); got != want {
			t.Errorf("ratDecimal(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestMockStream(t *testing.T) {
	f := &faults{}
	u := &upstream{name: "t", key: "k", faults: f}
	base, stop, err := startUpstream(u)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	post := func(body string) (int, []string, error) {
		req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var lines []string
		err = readSSE(resp.Body, func(l string) bool {
			if strings.HasPrefix(l, "data: ") {
				lines = append(lines, l)
			}
			return true
		})
		return resp.StatusCode, lines, err
	}
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":7,"messages":[]}`
	st, lines, err := post(body)
	if err != nil || st != 200 || len(lines) != streamChunks+2 || lines[len(lines)-1] != "data: [DONE]" ||
		!strings.Contains(lines[len(lines)-2], `"completion_tokens":7`) {
		t.Fatalf("stream: %d %v %d lines, last %q", st, err, len(lines), lines[len(lines)-2:])
	}
	f.cut.Store(true)
	_, lines, err = post(body)
	if err == nil || len(lines) != cutAfter {
		t.Fatalf("cut stream: err %v, %d lines; want an error after %d", err, len(lines), cutAfter)
	}
	f.cut.Store(false)
	f.failPct.Store(100)
	if st, _, _ := post(`{"model":"m","messages":[]}`); st != http.StatusServiceUnavailable {
		t.Fatalf("fault phase: status %d, want 503", st)
	}
	f.failPct.Store(0)
	if st, _, _ := post(`{"model":"m","max_tokens":"x","messages":[]}`); st != http.StatusBadRequest {
		t.Fatalf("bad max_tokens: status %d, want 400", st)
	}
}
