// Package memstore owns the in-memory reference implementation of
// graph.Store: the semantics of package graph written as plainly as possible,
// with no durability and no bounds beyond the process's memory.
//
// It serves two purposes. The conformance suite (graph/storetest) compares
// every backend against it in property tests, so it favours obviously correct
// code over speed: visibility is decided at read time from the winning upsert
// and the latest delete of each node and edge, never by physically removing
// anything. And other packages use it as a fake Store in their tests.
package memstore
