// Package telemetry owns rtgraph's logger and metrics registry construction:
// log/slog in JSON (the default, for machines) or text (for terminals), and a
// Prometheus registry that is created once in main and injected everywhere,
// never the global default registry.
package telemetry
