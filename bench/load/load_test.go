package main

import (
	"io"
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
		ep, err := endpoint(base)
		if (err == nil) != ok {
			t.Errorf("endpoint(%q) error = %v, want ok %v", base, err, ok)
		}
		if ok && !strings.HasSuffix(ep, "/v1/chat/completions") {
			t.Errorf("endpoint(%q) = %q", base, ep)
		}
	}
}
