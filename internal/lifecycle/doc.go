// Package lifecycle owns how every long-running rtgraph process starts and
// stops: readiness, the ordered start of its stages, and their ordered stop.
//
// The shutdown order is the one the design requires: readiness goes off
// first (load balancers stop sending work), then stages stop one at a time in
// the reverse of their start order — so a process that starts
// [HTTP, pipeline] stops fetching and flushing the pipeline (and commits what
// it flushed) before the HTTP server stops answering health checks.
package lifecycle
