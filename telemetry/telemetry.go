// Package telemetry sets up OpenTelemetry for the gateway: a tracer
// provider exporting over OTLP (HTTP or gRPC) or to the console, a meter
// provider served for Prometheus, and the instruments the gateway records
// (the GenAI semantic conventions' client metrics and Switchyard's own).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporters for traces.
const (
	ExporterNone     = "none"
	ExporterOTLPHTTP = "otlp-http"
	ExporterOTLPGRPC = "otlp-grpc"
	ExporterConsole  = "console"
)

// Options configure telemetry. The zero value exports no traces and
// serves metrics.
type Options struct {
	// Exporter is none, otlp-http, otlp-grpc or console.
	Exporter string
	// Endpoint is the collector, e.g. http://otel-collector:4318 (HTTP)
	// or otel-collector:4317 (gRPC); empty uses the OTLP exporters' own
	// default (and OTEL_EXPORTER_OTLP_* environment variables).
	Endpoint string
	// Headers are sent with every export (an API key of a hosted backend).
	Headers map[string]string
	// Insecure sends OTLP without TLS.
	Insecure bool
	// SamplingRatio is the share of new traces recorded, 0 to 1; a
	// request that arrives with a sampled parent is always recorded.
	SamplingRatio float64
	// SpanExporter, if set, replaces the configured exporter (tests).
	SpanExporter sdktrace.SpanExporter
	// Version is the service.version resource attribute.
	Version string
	// Console is where the console exporter writes; nil means stdout.
	Console io.Writer
}

// Telemetry holds the providers and the instruments.
type Telemetry struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	Meter      metric.Meter
	Metrics    *Metrics

	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	handler http.Handler
}

// New builds the providers. Nothing is global: the gateway passes the
// Telemetry where it is needed.
func New(ctx context.Context, o Options) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("switchyard"), semconv.ServiceVersion(o.Version)))
	if err != nil {
		return nil, err
	}
	t := &Telemetry{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}

	exp := o.SpanExporter
	if exp == nil {
		if exp, err = spanExporter(ctx, o); err != nil {
			return nil, err
		}
	}
	if exp != nil {
		ratio := o.SamplingRatio
		export := sdktrace.WithBatcher(exp)
		if o.SpanExporter != nil {
			export = sdktrace.WithSyncer(exp) // tests read spans as they end
		}
		t.tp = sdktrace.NewTracerProvider(
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
			export,
		)
		t.Tracer = t.tp.Tracer("github.com/switchyard/switchyard")
	} else {
		t.Tracer = noop.NewTracerProvider().Tracer("")
	}

	reg := prometheus.NewRegistry()
	pe, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(pe))
	t.Meter = t.mp.Meter("github.com/switchyard/switchyard")
	t.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if t.Metrics, err = newMetrics(t.Meter); err != nil {
		return nil, err
	}
	return t, nil
}

func spanExporter(ctx context.Context, o Options) (sdktrace.SpanExporter, error) {
	switch o.Exporter {
	case "", ExporterNone:
		return nil, nil
	case ExporterConsole:
		w := o.Console
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case ExporterOTLPHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithHeaders(o.Headers)}
		if o.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(withScheme(o.Endpoint, o.Insecure)+"/v1/traces"))
		}
		if o.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	case ExporterOTLPGRPC:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithHeaders(o.Headers)}
		if o.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpoint(strings.TrimPrefix(strings.TrimPrefix(o.Endpoint, "http://"), "https://")))
		}
		if o.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("unknown trace exporter %q (none, otlp-http, otlp-grpc, console)", o.Exporter)
}

func withScheme(endpoint string, insecure bool) string {
	endpoint = strings.TrimSuffix(endpoint, "/")
	if strings.Contains(endpoint, "://") {
		return endpoint
	}
	if insecure {
		return "http://" + endpoint
	}
	return "https://" + endpoint
}

// MetricsHandler serves the metrics in Prometheus' text format.
func (t *Telemetry) MetricsHandler() http.Handler { return t.handler }

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.tp != nil {
		errs = append(errs, t.tp.Shutdown(ctx))
	}
	errs = append(errs, t.mp.Shutdown(ctx))
	return errors.Join(errs...)
}
