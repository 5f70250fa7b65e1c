// Package traverse owns rtgraph's hop-traversal engine: breadth-first
// expansion of start nodes through 1 to [MaxHops] hops over a [graph.Reader],
// with per-hop limits, a supernode cap, filters, de-duplication, a time budget
// and honest accounting of everything it did not read.
//
// How a traversal runs. Each hop is one level. The engine turns the level's
// frontier into sources (one per frontier node, edge type and direction),
// and reads them in one round, at most Options.Concurrency store calls in
// flight. Results are consumed strictly in source order, so the answer is
// deterministic for a given graph whatever the timing: a hop returns the first
// Limit matching edges in (frontier order, edge type order, direction, store
// order). As soon as the hop's limit is met the round is cancelled and no
// further source is read. Nodes reached by a hop that were not visited before
// form the next frontier; node properties are read in one batched round at the
// end (or during the level when a hop filters on them).
//
// Truncation is never silent. Every hop reports whether it was cut and why
// ([Reason]), how many matching edges were read but not returned, whether that
// count is exact, and a [Continuation] that resumes the hop exactly where it
// stopped: the sources not read, the source that was cut part-way (with the
// store cursor of its page and the position of the first edge not returned),
// and the supernodes whose reading hit the cap (with their store cursors).
//
// Limits. Hop.Limit bounds the edges one hop returns; Request.MaxResults
// bounds the edges of the whole traversal; Hop.NodeCap bounds the edges read
// from one node per edge type and direction in one hop, so a supernode costs
// at most that much work. Request.Deadline is the time budget: expansion stops
// at nine tenths of it and the rest is kept for reading node properties, so a
// traversal that runs out of time still returns everything it read, marked
// truncated for reason [ReasonTimeBudget].
package traverse
