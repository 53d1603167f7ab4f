package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExporters(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opts    Options
		traces  bool
		wantErr string
	}{
		{Options{}, false, ""},
		{Options{Exporter: ExporterNone}, false, ""},
		{Options{Exporter: ExporterOTLPHTTP, Endpoint: "127.0.0.1:4318", Insecure: true, Headers: map[string]string{"x-key": "k"}}, true, ""},
		{Options{Exporter: ExporterOTLPGRPC, Endpoint: "127.0.0.1:4317", Insecure: true}, true, ""},
		{Options{Exporter: "zipkin"}, false, `unknown trace exporter "zipkin"`},
	} {
		tel, err := New(ctx, tc.opts)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr)
			continue
		}
		require.NoError(t, err, tc.opts.Exporter)
		require.Equal(t, tc.traces, tel.tp != nil, tc.opts.Exporter)
		_, sp := tel.Tracer.Start(ctx, "x")
		require.Equal(t, tc.traces, sp.SpanContext().IsValid(), "a span is recorded only with an exporter")
		sp.End()
		require.NoError(t, tel.mp.Shutdown(ctx))
	}
}

// The console exporter writes spans as JSON, for local debugging.
func TestConsoleExporter(t *testing.T) {
	var buf bytes.Buffer
	tel, err := New(context.Background(), Options{Exporter: ExporterConsole, Console: &buf, SamplingRatio: 1})
	require.NoError(t, err)
	_, sp := tel.Tracer.Start(context.Background(), "hello-span")
	sp.End()
	require.NoError(t, tel.Shutdown(context.Background()))
	require.Contains(t, buf.String(), `"Name":"hello-span"`)
}

func TestMetricsHandler(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	require.NoError(t, err)
	tel.Metrics.Fallbacks.Add(context.Background(), 2)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	require.True(t, strings.Contains(string(body), "switchyard_fallbacks_total"), "%s", body)
}
