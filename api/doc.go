// Package api owns rtgraph's query API over HTTP: node and adjacency reads,
// hop traversals (run by graph/traverse), and everything around them that a
// client can count on: RFC 9457 problem responses from one mapping function
// (problemFor), server-side limits, signed cursors, API keys with scopes,
// per-key rate limits per scope, the freshness watermark on every /v1
// response past authentication and rate limiting, metrics, health
// endpoints, and the OpenAPI 3.1 document it serves.
//
// Endpoints (openapi.yaml is the reference):
//
//	GET  /v1/nodes/{type}/{id}         a node and its properties; 404 if unknown
//	GET  /v1/nodes/{type}/{id}/edges   one page of adjacency, with next_cursor
//	POST /v1/traversals                1 to 4 hops, breadth-first
//	GET  /openapi.yaml, /metrics, /livez, /readyz
//
// Every GET route answers HEAD (net/http drops the body), and a 405 lists
// the methods its path serves in Allow, as RFC 9110 asks.
//
// Honest answers. A traversal that was cut says so per hop: truncated, the
// reasons (hop_limit, max_results, supernode_cap, time_budget), how many
// matching edges were read but not returned and whether that count is
// exact, and a cursor resuming that hop exactly where it stopped. Running out
// of time budget in a traversal is a truncated 200, never an error; the
// single-read endpoints (node, edges) answer 504 instead, as they have
// nothing partial to return.
//
// Input is refused the same way on every route. Text that is not UTF-8 in
// the path, query or body, and a query escape that does not decode, are a
// 400 malformed-request: url.ParseQuery would drop such a pair silently, and
// a dropped target or cap is a count never checked. An id over
// graph.MaxIDLen is a 422 over-cap with its cap. Problems name the field
// with its indices (hops[0].limit, lookups[1].targets[0]). Integer fields
// take any JSON number whose fraction is zero (5, 5.0, 5e0), as JSON
// Schema's integer does. A counts as_of later than the clock plus
// Config.MaxAsOfSkew, or before the Unix epoch (the zero time included), is
// a 422: counts of the future would let every cap allow. openapi.yaml states
// the same limits (patterns, lengths, maxima), so a client generated from it
// does not send what the server refuses for a limit.
//
// Cursors are opaque: versioned, HMAC-signed with the configured secret and
// bound to a fingerprint of the query that issued them, so a cursor sent
// with another query, altered, or signed by another secret is a 400. A
// traversal cursor carries the time windows the first request resolved, so
// the default lookback does not slide between pages. De-duplication holds
// within one response, and within one hop across its continuations; a
// continuation expands its hop's nodes afresh, so nodes an earlier response
// visited at other hops may appear again.
//
// Authentication. Keys come from the configuration, each with scopes
// (graph:read, counts:read, admin; admin implies the others), presented as
// "Authorization: Bearer <key>" or "X-API-Key". With no key configured the
// API is open and New logs a warning at start-up; see Config.AuthRequired.
// /livez, /readyz and /openapi.yaml are always open; /metrics is open unless
// Config.MetricsRequireKey.
//
// Rate limits. Token buckets per key (per client address for anonymous
// requests) and per scope: Config.RateLimit for graph:read routes,
// Config.CountsRateLimit for counts:read ones, whose requests are far
// cheaper and far more frequent. A client address that presents no key or
// a wrong one more often than Config.AuthFailureLimit is answered 429 for
// every request until it slows down, so keys cannot be guessed at speed.
// The address is the connection's; X-Forwarded-For is read only from
// Config.TrustedProxies.
// Every table is an LRU of Config.RateLimitClients entries. Refusals (401,
// 403, 429) carry no watermark.
//
// TLS. NewServerTLS builds the server's TLS from TLSConfig (the http.tls
// section): certificate and client CAs reloaded when their files change,
// checked at most every ReloadInterval on handshake, and optional client
// certificates. Config.CheckListen refuses an API without keys on a
// non-loopback address unless AllowUnauthenticatedNonLoopback.
package api
