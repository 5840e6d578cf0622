// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, as the OpenTelemetry SDKs of other languages do,
// so that Atrax is configured like every other traced service:
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 atrax serve -f atrax.json
//
// Nothing is exported unless an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
// OTEL_TRACES_EXPORTER is "otlp". The package keeps no global state: the
// caller passes the provider it returns to the components that trace.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// ServiceName is the service.name of Atrax's spans unless
// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says
// otherwise.
const ServiceName = "atrax"

// FromEnv returns the tracer provider the environment asks for, and the
// function that flushes and stops it (call it before the process exits).
// Without an exporter configured it returns a no-op provider, which still
// passes on the trace context that clients send.
//
// Besides the variables above it reads, through the SDK and the OTLP
// exporters: OTEL_SDK_DISABLED, OTEL_EXPORTER_OTLP_PROTOCOL (and
// _TRACES_PROTOCOL: "http/protobuf", the default, or "grpc"),
// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE,
// _INSECURE (each also in its _TRACES_ form), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_* (the batch span processor),
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func FromEnv(ctx context.Context, version string) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return noop.NewTracerProvider(), none, nil
	}
	switch exp := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return noop.NewTracerProvider(), none, nil
	case "":
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return noop.NewTracerProvider(), none, nil
		}
	case "otlp":
	default:
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Atrax exports traces with \"otlp\" or not at all (\"none\")", exp)
	}

	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want \"http/protobuf\" or \"grpc\"", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", ServiceName),
			attribute.String("service.version", version),
		),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(), // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// GRPCServer returns the stats handler that gives each RPC the control
// plane serves a span, a child of the caller's W3C trace context (which the
// edge's gateway and the CLI pass on in gRPC metadata). Health checks,
// which edges make continuously, get none. A nil tp traces nothing.
func GRPCServer(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewServerHandler(grpcOptions(tp)...)
}

// GRPCClient returns the stats handler that gives each RPC a client makes
// a span, and passes the trace context on in gRPC metadata: a REST call
// through the edge's gateway then continues, on the control plane, the
// trace its HTTP request started.
func GRPCClient(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewClientHandler(grpcOptions(tp)...)
}

// grpcOptions configure otelgrpc without its global defaults: the tracer
// provider given, W3C trace context only, and no metrics (Atrax's own
// Prometheus metrics count RPCs).
func grpcOptions(tp trace.TracerProvider) []otelgrpc.Option {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	}
}
