// Package storetest owns the conformance suite every graph.Store backend
// runs: one set of cases, written against the contract in package graph, so
// that the Cassandra and embedded backends (and the in-memory reference,
// graph/memstore) behave alike.
//
// A backend's test calls [Run] with a [Factory]. The suite writes only node
// ids under a namespace unique to each case, so a factory may hand out stores
// that share storage (one Cassandra keyspace for the whole run) as long as
// each store starts usable. TTL is tested without sleeping: edges are written
// with event times far enough in the past that EventTime+TTL is already
// behind the wall clock, which is why backends must compute expiry from event
// time, never from write time.
//
// The property cases (pgregory.net/rapid) apply random mutation sequences to
// the backend in a shuffled order, with duplicates and in random batches, and
// compare the final state with graph/memstore fed the original order. Their
// number of runs follows rapid's -rapid.checks flag (default 100, a fifth of
// that under -short).
package storetest
